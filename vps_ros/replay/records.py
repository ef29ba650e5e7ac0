"""A replay's output folder as a record that cannot look finished when it is not: the run
marks the folder in progress first (``IN_PROGRESS``) and takes away the previous run's
top-level files, writes each top-level file whole (a temporary file renamed over it,
:func:`write_atomic`) and removes the mark only once its report is written. A run killed
on the way leaves the mark and no ``metrics.json``; a stopped one (Ctrl-C, SIGTERM, a
fault) writes a report that says ``partial: true``."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

IN_PROGRESS = "IN_PROGRESS"
# What a finished run leaves at the top of its folder and a new run takes away first.
TOP_LEVEL = ("metrics.json", "report.md", "statistics.json")


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk, then rename
    it over ``path``: the file is the old one or the new one, whole, even when killed."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    return path


def write_json_atomic(path: Path, data: Any, indent: int | None = None) -> Path:
    return write_atomic(path, json.dumps(data, indent=indent) + "\n")


def begin_run(out: Path) -> None:
    """Remove the previous run's top-level files, so that nothing there describes a run
    this one replaces, and mark ``out`` (made if missing) in progress."""
    out.mkdir(parents=True, exist_ok=True)
    for name in TOP_LEVEL:
        (out / name).unlink(missing_ok=True)
    write_atomic(out / IN_PROGRESS, f"a replay (pid {os.getpid()}) is writing this folder; "
                 "if no process is, it was killed before its report was written\n")


def end_run(out: Path) -> None:
    """The report is written: the folder is no longer in progress."""
    (out / IN_PROGRESS).unlink(missing_ok=True)
