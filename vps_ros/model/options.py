"""The settings every model loader honours (:mod:`vps_ros.model.registry`)."""
from __future__ import annotations

from dataclasses import dataclass

from .config import PostprocessConfig
from .limits import InputLimits


@dataclass(frozen=True)
class LoadOptions:
    """Settings every loader honours."""

    device: str = "cpu"
    input_size: tuple[int, int] | None = None  # (height, width); None: the model's own
    postprocess: PostprocessConfig | None = None  # None: the model's own thresholds
    compile: bool = False
    backend: str = "torch"  # torch, or an engine of vps_ros.model.engines
    classes: str = ""  # class table (config/classes_<name>.yaml or a YAML path); "": the model's
    resize: str = "letterbox"  # how images are fitted into the input (model/resizing.py)
    threads: int = 0  # CPU threads of the network (torch's for the process, an engine's own); 0: torch's default
    precision: str = "auto"  # transformers EoMT/VidEoMT: auto (fp16 on CUDA, fp32 on the CPU), fp32, fp16, bf16
    quantization: str = "none"  # none (fp32), int8 (backend openvino: NNCF, engines/quantize.py), auto (int8 on openvino)
    limits: InputLimits = InputLimits()  # frame, network input and engine cache bounds
    # An engine's session of a new input size opened in a thread, torch running that
    # size meanwhile (the node: no frame stalls on an export); False: on the frame path
    background_builds: bool = False
