"""The one engine-backed segmenter, and where every model's backend is decided.

:class:`EngineSegmenter` runs a network on an engine of :mod:`.backends`, one session
per network input size (the ``limits.engine_sessions`` most recently used kept open):
an exported file (``vps-ros export``: the ``.onnx`` and
``.xml`` kinds of the model registry) has one fixed size, into which every frame is
fitted; a checkpoint is exported for each size its cameras need (letterboxed cameras of
another aspect need another input height: :meth:`MaskSegmenter.network_size`), cached
on disk (bounded: :mod:`.export_cache`), with its torch network to fall back to.

:func:`on_backend` is called by the registry for every model it loads: it returns the
segmenter on the backend asked for, or, where that engine cannot run it (runtime not
installed, no GPU for it, a network without an exporter, a failed export), the torch
segmenter with a logged warning and the reason in :attr:`MaskSegmenter.fallback` (the
node's /diagnostics counts it). An exported file, which has no torch network, cannot
fall back: that is an error.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ...errors import ConfigError, VpsRosError, first_line
from ...types import ClassTable
from ...version import __version__
from ..config import PostprocessConfig
from ..export import FORMATS, export_onnx
from ..mask_segmenter import MaskSegmenter, resolve_device
from ..options import LoadOptions
from ..limits import InputLimits
from .backends import READERS, EngineUnavailable, engine, engine_threads
from .export_cache import bound_exports, exports_dir, touch
from .format import OUTPUTS, VERSION, ExportInfo, read_onnx_info
from .openvino import read_info as read_ir_info
from .quantize import QUANTIZATIONS, cached_int8

log = logging.getLogger(__name__)

# One RGB uint8 image (1, H, W, 3) in, the OUTPUTS as numpy arrays out.
Session = Callable[[np.ndarray], tuple[np.ndarray, ...]]
Size = tuple[int, int]


class EngineSegmenter(MaskSegmenter):
    """A network run by an engine, one session per network input size.

    ``open_at(size)`` opens the session of one input size; the one of ``input_size``
    is opened at once (a failure then is the caller's). With ``fixed``, the network has
    that one size and every frame is fitted into it. Otherwise another size is opened
    on the first batch that needs it; if that fails (a full disk, a read-only cache),
    that size runs on ``torch`` from then on, logged and recorded in :attr:`fallback`,
    rather than failing, and retrying, every batch.

    At most ``max_sessions`` sessions stay open: one more size closes the least
    recently used (a camera that comes back pays its opening again, from the export
    cache; ``on_close(size)`` is told), so cameras of ever new sizes cannot grow the
    memory without bound.

    With ``background`` (and a torch network), a new size does not stall the frame
    that brings it (an export takes seconds): its session is opened in a thread, one
    size at a time, while frames of that size run on torch (the same network: the
    engine's outputs agree within the export's tolerance); the first batch after it is
    ready takes it into the sessions and runs on it. A camera-size change then costs
    one build, off the frame path. Without it, the batch waits for the opening (a
    replay's result does not depend on how fast an export was).
    """

    def __init__(self, classes: ClassTable, postprocess: PostprocessConfig, resize: str,
                 backend: str, device: str, input_size: Size,
                 open_at: Callable[[Size], Session], fixed: bool,
                 torch_segmenter: MaskSegmenter | None = None,
                 max_sessions: int = InputLimits().engine_sessions,
                 on_close: Callable[[Size], None] = lambda size: None,
                 background: bool = False) -> None:
        super().__init__(classes, device, postprocess, resize)
        self.backend = backend
        self._input_size = input_size
        self._open_at = open_at
        self._fixed = fixed
        self._torch = torch_segmenter
        self._max_sessions = max_sessions
        self._on_close = on_close
        self._sessions: OrderedDict[Size, Session | None] = OrderedDict(
            {input_size: open_at(input_size)})
        self._background = background and torch_segmenter is not None
        self._lock = threading.Lock()
        self._building: Size | None = None          # the size whose build is under way
        self._built: tuple[Size, Session | None] | None = None   # done, not yet taken
        self._idle = threading.Event()
        self._idle.set()

    @property
    def open_sizes(self) -> list[Size]:
        """The input sizes whose sessions are open (or run on torch), least recently
        used first."""
        return list(self._sessions)

    @property
    def input_size(self) -> Size:
        return self._input_size

    def network_size(self, image_sizes) -> Size:
        """An exported file's shape, whatever the cameras (frames are fitted into it);
        else the letterbox size of :class:`MaskSegmenter`."""
        return self._input_size if self._fixed else super().network_size(image_sizes)

    def predict(self, batch: np.ndarray) -> dict[str, torch.Tensor]:
        session = self._session((batch.shape[1], batch.shape[2]))
        if session is None:
            return self._torch.predict(batch)
        outs = [session(np.ascontiguousarray(batch[i:i + 1])) for i in range(len(batch))]
        return {name: torch.from_numpy(np.concatenate([out[k] for out in outs]))
                for k, name in enumerate(OUTPUTS)}

    def wait_built(self, timeout: float | None = None) -> bool:
        """Wait for the background build under way, if any (True: none is)."""
        return self._idle.wait(timeout)

    def _session(self, size: Size) -> Session | None:
        with self._lock:
            built, self._built = self._built, None
            if built is not None:
                self._building = None
        if built is not None:
            self._make_room()
            self._sessions[built[0]] = built[1]
        if size in self._sessions:
            self._sessions.move_to_end(size)
            return self._sessions[size]
        if self._background:
            self._start_build(size)
            return None
        self._make_room()     # first: the export's cache bound may then drop its file
        self._sessions[size] = self._opened(size)
        return self._sessions[size]

    def _make_room(self) -> None:
        """Close the least recently used sessions until one more fits."""
        while len(self._sessions) >= self._max_sessions:
            closed, _ = self._sessions.popitem(last=False)
            self._on_close(closed)
            log.info("backend %s: closed the session of input %dx%d (least recently "
                     "used of %d)", self.backend, closed[1], closed[0], self._max_sessions)

    def _opened(self, size: Size) -> Session | None:
        """The session of ``size``; None (torch for that size, logged) if it fails."""
        try:
            return self._open_at(size)
        except Exception as exc:  # any export or engine failure: torch for this size
            reason = str(exc) if isinstance(exc, VpsRosError) else first_line(exc)
            log.warning("backend %s: input %dx%d runs on torch: %s", self.backend,
                        size[1], size[0], reason)
            self.fallback = f"{self.backend} at {size[1]}x{size[0]}: {reason}"
            return None

    def _start_build(self, size: Size) -> None:
        """Open ``size``'s session in a thread, unless one is being built (or waits to
        be taken): that size then starts once this one is taken."""
        with self._lock:
            if self._building is not None:
                return
            self._building = size
            self._idle.clear()
        log.info("backend %s: opening the session of input %dx%d in the background; "
                 "torch runs that size meanwhile", self.backend, size[1], size[0])
        # Not a daemon: the interpreter joins it at exit, instead of ending the process
        # while the export runs in C++ ("terminate called without an active exception").
        threading.Thread(target=self._build, args=(size,), daemon=False,
                         name=f"engine {size[1]}x{size[0]}").start()

    def _build(self, size: Size) -> None:
        session = self._opened(size)
        with self._lock:
            self._built = (size, session)
        self._idle.set()


def load(source: str, options: LoadOptions) -> EngineSegmenter:
    """The registry's loader of exported files (``.onnx``, OpenVINO ``.xml``) on the
    engine ``options.backend``; an engine that cannot run here is an error (there is
    no torch network to fall back to)."""
    path = Path(source)
    readers = READERS[path.suffix]
    if options.backend not in readers:
        raise ConfigError(f"model {source}: an exported network runs on backend "
                          f"{' or '.join(readers)}, not {options.backend!r}")
    try:
        return _open_exported(path, options)
    except EngineUnavailable as exc:
        raise ConfigError(f"model {source}: backend {options.backend}: {exc}") from None


def classes(source: str, options: LoadOptions) -> ClassTable:
    """The class table of an exported file's outputs (its metadata), without opening an
    engine."""
    table = read_exported_info(Path(source)).classes
    _check_classes(source, table, options)
    return table


def read_exported_info(path: Path) -> ExportInfo:
    """What an exported file (ONNX, or OpenVINO IR) says about itself, checked against
    its graph."""
    return read_ir_info(path) if path.suffix == ".xml" else read_onnx_info(path)


def on_backend(segmenter: MaskSegmenter, source: str, options: LoadOptions) -> MaskSegmenter:
    """``segmenter`` on ``options.backend``: itself for torch (or when it already runs
    there); a checkpoint's network exported to ONNX (cached by the checkpoint's
    contents and input size) and opened on that engine, once per network input size it
    meets; the torch segmenter with the reason in ``fallback`` where that cannot be."""
    backend = options.backend
    if options.quantization not in QUANTIZATIONS:
        raise ConfigError(f"quantization {options.quantization!r}: not one of "
                          f"{', '.join(QUANTIZATIONS)}")
    if options.quantization == "int8" and backend != "openvino":
        raise ConfigError(f"quantization int8 runs on backend openvino (OpenVINO NNCF), "
                          f"not {backend}; set quantization: auto or none")
    if backend in ("torch", segmenter.backend):
        return segmenter
    try:
        if not segmenter.exportable:
            raise EngineUnavailable(f"{segmenter.family} models run on torch")
        return _exporting(segmenter, source,
                          dataclasses.replace(options, device=segmenter.device))
    except ConfigError:
        raise
    except Exception as exc:  # any engine or export failure: run on torch, say why
        reason = str(exc) if isinstance(exc, VpsRosError) else first_line(exc)
        log.warning("model %s: backend %s unavailable, running on torch instead: %s",
                    source, backend, reason)
        segmenter.fallback = f"{backend}: {reason}"
        return segmenter


def _open_exported(path: Path, options: LoadOptions) -> EngineSegmenter:
    device = resolve_device(options.device)
    module = engine(options.backend)
    module.check_available(device)
    info = read_exported_info(path)
    _check_classes(str(path), info.classes, options)
    if options.input_size and tuple(options.input_size) != info.input_size:
        raise ConfigError(f"model {path} was exported for input {info.input_size[1]}x"
                          f"{info.input_size[0]}, but input_width x input_height ask for "
                          f"{options.input_size[1]}x{options.input_size[0]}: export it again "
                          "with --height and --width, or set both to 0")
    threads = engine_threads(options.threads)
    return EngineSegmenter(info.classes, options.postprocess or info.postprocess,
                           options.resize, options.backend, device, info.input_size,
                           lambda size: module.open_session(path, device, threads),
                           fixed=True)


def _exporting(segmenter: MaskSegmenter, source: str, options: LoadOptions) -> EngineSegmenter:
    """A checkpoint's network on an engine, exported for each input size on demand."""
    module = engine(options.backend)
    module.check_available(options.device)
    threads = engine_threads(options.threads)

    in_use: dict[Size, Path] = {}   # the exports of the open sessions: never deleted

    def open_at(size: Size) -> Session:
        # list() copies at once (no Python code runs): a background build reads this
        # while the frame path may close a session
        kept = set(list(in_use.values()))
        path = cached_network(segmenter, source, size, options, kept)
        read_exported_info(path)   # a damaged cache entry is an error, not a silent run
        session = module.open_session(path, options.device, threads)
        in_use[size] = path
        return session
    return EngineSegmenter(segmenter.classes, segmenter.postprocess, options.resize,
                           options.backend, options.device, segmenter.input_size, open_at,
                           fixed=False, torch_segmenter=segmenter,
                           max_sessions=options.limits.engine_sessions,
                           on_close=lambda size: in_use.pop(size, None),
                           background=options.background_builds)


def cached_network(segmenter: MaskSegmenter, source: str, size: Size, options: LoadOptions,
                   in_use: set[Path] | frozenset[Path] = frozenset()) -> Path:
    """The file an engine opens for the checkpoint ``source``'s network at input
    ``size``: its ONNX export in the cache, or, with quantization int8 (or auto on
    openvino), that export's INT8 OpenVINO IR beside it; each made on first use and
    reused after (``vps-ros export --quantization int8`` makes both ahead of a start)."""
    path = _cached_export(segmenter, source, size, options.limits, in_use)
    if options.quantization == "int8" or (options.quantization == "auto"
                                          and options.backend == "openvino"):
        path = cached_int8(path)
    return path


def _check_classes(source: str, table: ClassTable, options: LoadOptions) -> None:
    """The ``classes`` option names the table the network was exported with, or none."""
    if options.classes:
        asked = ClassTable.named(options.classes)
        if asked != table:
            raise ConfigError(f"model {source}: exported for class table {table.name!r}, but "
                              f"classes asks for {asked.name!r}")


def _cached_export(segmenter: MaskSegmenter, source: str, size: Size,
                   limits: InputLimits, in_use: set[Path]) -> Path:
    """The checkpoint's export at input ``size``, keyed by its contents, the size and
    the versions of vps_ros and of the export format (the graph is built by this code);
    marked used, and the cache held within ``limits`` after a new export (``in_use``
    and the new one kept)."""
    digest = hashlib.sha256(Path(source).read_bytes() + f"{__version__} {VERSION}".encode()
                            ).hexdigest()[:20]
    height, width = size
    name = f"{Path(source).stem}-{digest}-{height}x{width}{FORMATS['onnx']}"
    path = exports_dir() / name
    if path.is_file():
        touch(path)
    else:
        log.info("exporting %s for input %dx%d to %s", source, width, height, path)
        export_onnx(segmenter, path, Path(source).name, size)
        touch(path)
        bound_exports(limits, keep=in_use | {path})
    return path
