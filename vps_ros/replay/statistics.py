"""A drive's sufficient statistics as plain data: what a fleet's ``drives/<drive>.json``
and a single drive's ``statistics.json`` hold, so that runs can be added up
(``fleet_totals``) and compared (``compare``) exactly, without going back to frames."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .latency import LatencyHistogram
from .records import write_json_atomic
from .scoring import ReplayScorer

STATISTICS_FILE = "statistics.json"


def drive_name(bag: Path) -> str:
    """A drive is named after its bag: the folder's name, or the file's without suffix."""
    return bag.stem if bag.is_file() else bag.name


def drive_statistics(name: str, scorer: ReplayScorer) -> dict[str, Any]:
    """The class table, label divisor and windows the drive was scored with, its
    sequences (``<drive>/<camera>`` -> ``MetricStats.state_dict()``) and its latency
    histogram."""
    return {"classes": scorer.space.classes.to_dict(),
            "label_divisor": scorer.space.label_divisor, "windows": list(scorer.windows),
            "sequences": {f"{name}/{camera}": stats.state_dict()
                          for camera, stats in scorer.sequence_stats().items()},
            "latency": LatencyHistogram.of([v for score in scorer.cameras.values()
                                            for v in score.latency_ms]).state_dict()}


def write_statistics(out: Path, bag: Path, scorer: ReplayScorer, counts: dict[str, Any],
                     settings: dict[str, Any]) -> Path:
    """``OUT/statistics.json`` of a single-drive replay: the fleet drive file's fields
    (``drive``, ``bag``, ``error``, counts, ``settings``: model, parameters file,
    windows, classes and cameras, and :func:`drive_statistics`) and
    ``frame_records``: per sequence, every replayed frame's record
    (``ReplayScorer.frame_records``), which ``vps-ros compare`` resamples in blocks. Written then renamed: whole or absent."""
    name = drive_name(bag)
    data = {"drive": name, "bag": str(bag), "error": None,
            **{k: counts[k] for k in ("frames", "annotated_frames", "dropped_frames",
                                      "id_switches", "recoveries")},
            "settings": settings, **drive_statistics(name, scorer),
            "frame_records": {f"{name}/{camera}": records
                       for camera, records in scorer.frame_records().items()}}
    return write_json_atomic(out / STATISTICS_FILE, data)
