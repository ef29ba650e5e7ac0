"""ONNX Runtime engine: the CPU execution provider; on an NVIDIA GPU (device
``cuda[:N]``) TensorRT (fp16, engine cache under :func:`cache_dir`) then CUDA.

The GPU path is code only here: it was not run on this project's GPU-less machines.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import first_line
from .backends import EngineUnavailable, cache_dir
from .format import OUTPUTS


def check_available(device: str) -> None:
    """Raise EngineUnavailable unless ONNX Runtime can run on ``device`` here."""
    providers(device)


def providers(device: str) -> list:
    """The execution providers for ``device``, best first."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise EngineUnavailable("ONNX Runtime is not installed (the engines extra: "
                                "pip install onnxruntime)") from None
    if not device.startswith("cuda"):
        return ["CPUExecutionProvider"]
    device_id = int(device.partition(":")[2] or 0)
    available = ort.get_available_providers()
    engines = cache_dir() / "tensorrt"
    wanted = [("TensorrtExecutionProvider", {
                  "device_id": device_id, "trt_fp16_enable": True,
                  "trt_engine_cache_enable": True, "trt_engine_cache_path": str(engines),
                  "trt_timing_cache_enable": True}),
              ("CUDAExecutionProvider", {"device_id": device_id})]
    chosen = [entry for entry in wanted if entry[0] in available]
    if not chosen:
        raise EngineUnavailable(f"device {device}: this ONNX Runtime has no GPU execution "
                                f"provider (it has {', '.join(available)}; the GPU build is "
                                "onnxruntime-gpu)")
    engines.mkdir(parents=True, exist_ok=True)
    return chosen + ["CPUExecutionProvider"]


def open_session(path: Path, device: str, threads: int):
    """A callable running the ONNX file at ``path`` on ``device``."""
    chosen = providers(device)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        session = ort.InferenceSession(str(path), options, providers=chosen)
    except Exception as exc:  # e.g. a CUDA provider without a usable GPU
        if device.startswith("cuda"):
            raise EngineUnavailable(f"device {device}: {first_line(exc)}") from None
        raise
    if device.startswith("cuda") and session.get_providers()[0] == "CPUExecutionProvider":
        # ONNX Runtime falls back to the CPU by itself when the GPU providers fail to start
        gpu = " and ".join(name for name, _ in chosen[:-1])
        raise EngineUnavailable(f"device {device}: {gpu} did not start (ONNX Runtime fell "
                                "back to the CPU)")
    names = list(OUTPUTS)

    def run(image: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(session.run(names, {"image": image}))
    return run
