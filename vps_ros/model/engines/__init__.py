"""Inference engines for exported segmenter networks: the ``backend`` parameter.

``torch`` runs a checkpoint's own network (:class:`~vps_ros.model.Segmenter`); every
other backend is an engine that runs the network exported by
:mod:`vps_ros.model.export`: either a file exported beforehand (``vps-ros export``; the
``.onnx`` and ``.xml`` kinds of the model registry) or, for a checkpoint, one exported
when the model is opened (:func:`accelerate`, cached on disk). :data:`ENGINES` maps each
engine to its module, which defines ``open_session(path, device, threads) -> Session``,
imports its runtime only there (the ``engines`` extra) and raises
:class:`EngineUnavailable` when it cannot run here (runtime not installed, a GPU
execution provider without a GPU). A checkpoint then runs on torch with a logged
warning, recorded in :attr:`MaskSegmenter.fallback` (the node's /diagnostics counts
it); an exported file, which has no torch network, raises a clear error.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from ...errors import ConfigError, VpsRosError, first_line
from ... import __version__
from ...types import ClassTable
from ..export import FORMATS, VERSION, export_onnx, read_onnx_info
from ..mask_segmenter import MaskSegmenter, resolve_device
from ..registry import LoadOptions
from .exported import ExportedSegmenter

log = logging.getLogger(__name__)

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


def open_exported(source: str, options: LoadOptions) -> ExportedSegmenter:
    """An exported file (``.onnx``, OpenVINO ``.xml``) on the engine ``options.backend``."""
    path = Path(source)
    readers = READERS[path.suffix]
    if options.backend not in readers:
        raise ConfigError(f"model {source}: an exported network runs on backend "
                          f"{' or '.join(readers)}, not {options.backend!r}")
    device = resolve_device(options.device)
    module = engine(options.backend)
    module.check_available(device)
    info = _read_info(path)
    _check_classes(source, info.classes, options)
    if options.input_size and tuple(options.input_size) != info.input_size:
        raise ConfigError(f"model {source} was exported for input {info.input_size[1]}x"
                          f"{info.input_size[0]}, but input_width x input_height ask for "
                          f"{options.input_size[1]}x{options.input_size[0]}: export it again "
                          "with --height and --width, or set both to 0")
    session = module.open_session(path, device, torch.get_num_threads())
    return ExportedSegmenter(info, session, options.backend, device, options.postprocess,
                             options.resize)


def load(source: str, options: LoadOptions) -> ExportedSegmenter:
    """The registry's loader of exported files; an engine that cannot run here is an
    error (there is no torch network to fall back to)."""
    try:
        return open_exported(source, options)
    except EngineUnavailable as exc:
        raise ConfigError(f"model {source}: backend {options.backend}: {exc}") from None


def classes(source: str, options: LoadOptions) -> ClassTable:
    """The class table of an exported file's outputs (its metadata), without opening an
    engine."""
    table = _read_info(Path(source)).classes
    _check_classes(source, table, options)
    return table


def _check_classes(source: str, table: ClassTable, options: LoadOptions) -> None:
    """The ``classes`` option names the table the network was exported with, or none."""
    if options.classes:
        from ...metrics.cli import load_classes
        asked = load_classes(options.classes)
        if asked != table:
            raise ConfigError(f"model {source}: exported for class table {table.name!r}, but "
                              f"classes asks for {asked.name!r}")


def accelerate(segmenter: MaskSegmenter, source: str, options: LoadOptions) -> MaskSegmenter:
    """``segmenter`` (a checkpoint's torch network) on ``options.backend``: exported to
    ONNX (cached by the checkpoint's contents and input size) and opened on that engine,
    once per network input size it meets (:class:`AcceleratedSegmenter`).
    When the engine cannot run here, or the export fails, ``segmenter`` itself, with a
    logged warning and the reason in its ``fallback``."""
    if options.backend == "torch":
        return segmenter
    options = dataclasses.replace(options, device=segmenter.device)  # "cuda" resolved
    try:
        module = engine(options.backend)
        module.check_available(options.device)
        return AcceleratedSegmenter(segmenter, source, options)
    except ConfigError:
        raise
    except Exception as exc:  # any engine or export failure: run on torch, say why
        reason = str(exc) if isinstance(exc, VpsRosError) else first_line(exc)
        log.warning("backend %s unavailable for %s, running on torch instead: %s",
                    options.backend, source, reason)
        segmenter.fallback = f"{options.backend}: {reason}"
        return segmenter


class AcceleratedSegmenter(MaskSegmenter):
    """A checkpoint's network run by an engine, exported for each network input size it
    meets: letterboxed cameras of another aspect need another input height
    (:meth:`MaskSegmenter.network_size`), and an exported graph has one shape. The
    checkpoint's input size is exported and opened at once (a failure then falls back
    to torch at configure); another size on the first batch that needs it (an export
    of seconds, cached on disk for the next start). If that fails (a full disk, a
    read-only cache), that size runs on torch from then on, logged and recorded in
    :attr:`fallback`, rather than failing, and retrying, every batch."""

    def __init__(self, segmenter: MaskSegmenter, source: str, options: LoadOptions) -> None:
        super().__init__(segmenter.classes, options.device, segmenter.postprocess,
                         options.resize)
        self.backend = options.backend
        self._torch, self._source, self._options = segmenter, source, options
        self._engines: dict[tuple[int, int], MaskSegmenter] = {}
        self._engines[segmenter.input_size] = self._open(segmenter.input_size)

    @property
    def input_size(self) -> tuple[int, int]:
        return self._torch.input_size

    def predict(self, batch: np.ndarray) -> dict[str, torch.Tensor]:
        return self._engine((batch.shape[1], batch.shape[2])).predict(batch)

    def _engine(self, size: tuple[int, int]) -> MaskSegmenter:
        if size not in self._engines:
            try:
                self._engines[size] = self._open(size)
            except Exception as exc:  # any export or engine failure: torch for this size
                reason = str(exc) if isinstance(exc, VpsRosError) else first_line(exc)
                log.warning("backend %s: input %dx%d runs on torch: %s", self.backend,
                            size[1], size[0], reason)
                self.fallback = f"{self.backend} at {size[1]}x{size[0]}: {reason}"
                self._engines[size] = self._torch
        return self._engines[size]

    def _open(self, size: tuple[int, int]) -> ExportedSegmenter:
        path = _cached_export(self._torch, self._source, size)
        return open_exported(str(path), LoadOptions(
            self.device, size, self._torch.postprocess, self._options.compile, self.backend))


def _cached_export(segmenter: MaskSegmenter, source: str, size: tuple[int, int]) -> Path:
    """The checkpoint's export at input ``size``, keyed by its contents, the size and
    the versions of vps_ros and of the export format (the graph is built by this code)."""
    digest = hashlib.sha256(Path(source).read_bytes() + f"{__version__} {VERSION}".encode()
                            ).hexdigest()[:20]
    height, width = size
    name = f"{Path(source).stem}-{digest}-{height}x{width}{FORMATS['onnx']}"
    path = cache_dir() / "exports" / name
    if not path.is_file():
        log.info("exporting %s for input %dx%d to %s", source, width, height, path)
        export_onnx(segmenter, path, Path(source).name, size)
    return path


def _read_info(path: Path):
    if path.suffix == ".xml":
        from .openvino import read_info
        return read_info(path)
    return read_onnx_info(path)
