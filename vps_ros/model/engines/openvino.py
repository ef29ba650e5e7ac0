"""OpenVINO engine (CPU): runs exported ONNX files and OpenVINO IR (``.xml``).

Telemetry stays off: ``import openvino`` initialises the telemetry of its conversion
tool (``openvino.tools.ovc``) and sends an "import" event unless the user opted out;
:func:`import_openvino` imports it with the ``openvino_telemetry`` package blocked, so
that the tool takes its own no-op stub. Only the runtime is used (``Core.read_model``,
``compile_model``, ``save_model``), never ``convert_model``. Inference is fp32
(``INFERENCE_PRECISION_HINT``: CPUs with bf16 units would otherwise default to bf16)
with the process's torch thread count.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ...errors import CheckpointError, first_line
from .backends import EngineUnavailable
from .format import METADATA_KEY, OUTPUTS, ExportInfo


def import_openvino():
    """The ``openvino`` module, imported with its telemetry package blocked (a ``None``
    entry in ``sys.modules`` makes ``import openvino_telemetry`` fail, and OpenVINO's
    tools then use their no-op stub). Raises ImportError when OpenVINO is not installed."""
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)
    import openvino
    return openvino


def check_available(device: str) -> None:
    """Raise EngineUnavailable unless OpenVINO can run on ``device`` here."""
    if device.startswith("cuda"):
        raise EngineUnavailable(f"device {device}: the OpenVINO engine runs on the CPU; "
                                "on an NVIDIA GPU use backend onnxruntime (TensorRT, CUDA)")
    try:
        import_openvino()
    except ImportError:
        raise EngineUnavailable("OpenVINO is not installed (the engines extra: "
                                "pip install openvino)") from None


def read_info(path: Path) -> ExportInfo:
    """The metadata of an exported OpenVINO IR, checked against its graph."""
    ov = import_openvino()
    if not path.is_file() or not path.with_suffix(".bin").is_file():
        raise CheckpointError(f"{path}: OpenVINO IR not found (needs {path.name} and "
                              f"{path.with_suffix('.bin').name})")
    try:
        model = ov.Core().read_model(str(path))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: not an OpenVINO IR ({first_line(exc)})") from None
    text = (model.get_rt_info([METADATA_KEY]).astype(str)
            if model.has_rt_info([METADATA_KEY]) else None)
    info = ExportInfo.from_json(text, str(path))
    info.check_outputs({port.get_any_name(): list(port.get_partial_shape().to_shape())
                        for port in list(model.inputs) + list(model.outputs)}, str(path))
    return info


def open_session(path: Path, device: str, threads: int):
    """A callable running the file at ``path`` on the CPU with ``threads`` threads."""
    check_available(device)
    core = import_openvino().Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU", {
        "INFERENCE_NUM_THREADS": int(threads), "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    outputs = [compiled.output(name) for name in OUTPUTS]

    def run(image: np.ndarray) -> tuple[np.ndarray, ...]:
        result = request.infer({0: image})
        return tuple(np.array(result[port]) for port in outputs)  # buffers are reused
    return run
