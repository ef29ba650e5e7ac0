"""Which engines exist and where they keep their files.

:data:`ENGINES` maps each engine of the ``backend`` parameter to its module, which
defines ``check_available(device)`` and ``open_session(path, device, threads) ->
Session``, imports its runtime only there (the ``engines`` extra) and raises
:class:`EngineUnavailable` when it cannot run here (runtime not installed, a GPU
execution provider without a GPU).
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from ...errors import ConfigError, VpsRosError

BACKENDS = ("torch", "openvino", "onnxruntime")
ENGINES = {"openvino": "vps_ros.model.engines.openvino",
           "onnxruntime": "vps_ros.model.engines.onnxruntime"}
# Which engines read which exported file.
READERS = {".onnx": ("openvino", "onnxruntime"), ".xml": ("openvino",)}


class EngineUnavailable(VpsRosError):
    """The engine cannot run here (not installed, no device for it)."""


def cache_dir() -> Path:
    """Where on-the-fly exports and engine caches live: $VPS_ROS_CACHE, else
    ~/.cache/vps_ros."""
    return Path(os.environ.get("VPS_ROS_CACHE") or Path.home() / ".cache" / "vps_ros")


def engine(backend: str):
    """The module of ``backend``'s engine."""
    if backend not in ENGINES:
        raise ConfigError(f"backend {backend!r}: not an engine; engines: {', '.join(ENGINES)}")
    return importlib.import_module(ENGINES[backend])


def engine_threads(threads: int) -> int:
    """An engine's thread count for the ``threads`` load option (0: one per core, as
    torch's default)."""
    return threads or os.cpu_count() or 1
