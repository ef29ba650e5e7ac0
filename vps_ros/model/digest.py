"""Content digests (SHA-256) of what a run is computed with: a model (a checkpoint, a
transformers folder, an exported engine) and a class table. A run's settings carry
them beside the paths, so that a file replaced at the same path is told apart
(``vps-ros replay --resume`` refuses it)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..types import ClassTable

CHUNK = 1 << 20
# (real path, mtime_ns, size) -> digest: a file hashed once per process while unchanged.
_FILES: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    status = os.stat(path)
    key = (os.path.realpath(path), status.st_mtime_ns, status.st_size)
    if key not in _FILES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                digest.update(chunk)
        _FILES[key] = digest.hexdigest()
    return _FILES[key]


def content_digest(path: Path) -> str:
    """SHA-256 of a file, or of a folder: every file's path relative to the folder and its
    own digest, in sorted order (renaming a file changes it, as editing one does)."""
    path = Path(path)
    if not path.is_dir():
        return file_digest(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(file_digest(file).encode() + b"\n")
    return digest.hexdigest()


def model_digest(source: str) -> str | None:
    """The digest of a model on disk; None for one named otherwise (``hf:ORG/NAME@REV``
    is pinned by its revision)."""
    return content_digest(Path(source)) if source and Path(source).exists() else None


def class_table_digest(table: ClassTable) -> str:
    """SHA-256 of a class table's canonical JSON (names, ids, kinds, colours, void id)."""
    text = json.dumps(table.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
