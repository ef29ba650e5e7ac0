"""Output paths a user gives a command, checked before the command does any work.

A report that cannot be written should fail at once, in one line, not after an hour of
replay with ``IsADirectoryError``. Each command calls :func:`check_outputs` first with
its output files and folders. Missing folders are fine (the commands make them); what
is checked is that the path is of the right kind and that a file can be created where
it will be: by creating (and deleting) one, since permission bits alone do not say it
(root passes them, a read-only mount or ``/proc`` does not).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Mapping

from ..errors import ConfigError


def check_outputs(files: Mapping[str, Path | str | None] | None = None,
                  folders: Mapping[str, Path | str | None] | None = None) -> None:
    """Refuse an output path (option -> path; None: not given) that cannot be written:
    a file that is a folder, a folder that is a file, somewhere a file cannot be made."""
    for flag, path in (files or {}).items():
        if path is None:
            continue
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"{flag} {path} is a folder; give a file name")
        if path.exists():
            _probe(flag, path, lambda: open(path, "ab").close())
        else:
            _writable(flag, path, path.parent)
    for flag, path in (folders or {}).items():
        if path is None:
            continue
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{flag} {path} is a file, not a folder")
        _writable(flag, path, path)


def _writable(flag: str, path: Path, folder: Path) -> None:
    """A file can be made in ``folder``, or in its nearest existing parent."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: {folder} is a file, not a folder")
    _probe(flag, path, lambda: tempfile.NamedTemporaryFile(dir=folder,
                                                           prefix=".vps_ros_check_").close(),
           folder)


def _probe(flag: str, path: Path, attempt: Callable[[], None],
           folder: Path | None = None) -> None:
    try:
        attempt()
    except OSError as exc:
        where = f"nothing can be written in {folder}" if folder else "not writable"
        raise ConfigError(f"{flag} {path}: {where} ({exc.strerror or exc})") from None
