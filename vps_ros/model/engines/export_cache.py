"""The on-disk cache of on-the-fly exports and engine builds, bounded.

A checkpoint run on an engine is exported once per network input size
(:func:`~vps_ros.model.engines.segmenter.on_backend`) into ``exports/`` under
:func:`~vps_ros.model.engines.backends.cache_dir`; TensorRT keeps its engines in
``tensorrt/``. Every camera size adds an export, so after each new one the least
recently used exports are deleted until at most ``limits.export_cache_files`` files of
at most ``limits.export_cache_mb`` MB in all remain, never the one just written nor
those of the sessions this process has open (at most ``limits.engine_sessions``: the
bound holds when it is the larger). "Used" is the file's access time, set explicitly
when an export is written or opened (a mount's ``noatime`` cannot freeze it); its
modification time stays that of the export.
``vps-ros cache info`` / ``vps-ros cache clear`` show and empty both folders.

Another process may delete an export between this one writing and opening it; that
size then runs on torch, logged (:class:`~vps_ros.model.engines.segmenter.EngineSegmenter`).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError
from ..limits import InputLimits
from .backends import cache_dir

log = logging.getLogger(__name__)

MB = 1024 * 1024
FOLDERS = ("exports", "tensorrt")   # what cache_dir() holds
EXPORT_SUFFIX = ".onnx"


@dataclass(frozen=True)
class FolderInfo:
    """One folder of the cache: its path, how many files, how many bytes."""

    path: Path
    files: int
    bytes: int


def exports_dir() -> Path:
    return cache_dir() / "exports"


def touch(path: Path) -> None:
    """Mark ``path`` as just used (its access time; the modification time is kept)."""
    stat = path.stat()
    os.utime(path, ns=(time.time_ns(), stat.st_mtime_ns))


def bound_exports(limits: InputLimits, keep: set[Path]) -> list[Path]:
    """Delete the least recently used exports beyond ``limits`` (count and MB), never
    those in ``keep``; the paths deleted, oldest first."""
    entries = []
    for path in [*exports_dir().glob(f"*{EXPORT_SUFFIX}"), *exports_dir().glob("*.xml")]:
        try:
            stat = path.stat()
            weights = path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else 0
        except FileNotFoundError:   # deleted by another process meanwhile
            continue
        entries.append((stat.st_atime_ns, path, stat.st_size + weights))
    entries.sort()
    count, total = len(entries), sum(size for _, _, size in entries)
    removed = []
    for _, path, size in entries:
        if count <= limits.export_cache_files and total <= limits.export_cache_mb * MB:
            break
        if path in keep:
            continue
        path.unlink(missing_ok=True)
        if path.suffix == ".xml":   # an INT8 IR (.engines.quantize): its weights too
            path.with_suffix(".bin").unlink(missing_ok=True)
        count, total = count - 1, total - size
        removed.append(path)
    if removed:
        log.info("export cache %s: deleted %d least recently used export(s) (bounds: %d "
                 "files, %d MB)", exports_dir(), len(removed), limits.export_cache_files,
                 limits.export_cache_mb)
    return removed


def info() -> list[FolderInfo]:
    """Each folder of the cache (those that exist), with its files and bytes."""
    folders = []
    for name in FOLDERS:
        path = _root() / name
        if path.is_dir():
            files = [f for f in path.rglob("*") if f.is_file()]
            folders.append(FolderInfo(path, len(files), sum(f.stat().st_size for f in files)))
    return folders


def clear() -> list[FolderInfo]:
    """Delete every file of the cache's folders; what was deleted, per folder."""
    cleared = info()
    for folder in cleared:
        for path in sorted(folder.path.rglob("*"), reverse=True):  # files before folders
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
    return cleared


def _root() -> Path:
    root = cache_dir()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"cache folder {root} ($VPS_ROS_CACHE) is not a folder")
    return root
