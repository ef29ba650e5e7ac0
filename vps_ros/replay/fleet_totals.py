"""A fleet's totals: the statistics of its drives, added up exactly from their files."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..metrics import LabelSpace, MetricStats
from ..types import ClassTable
from .latency import LatencyHistogram


@dataclass
class FleetTotals:
    stats: MetricStats | None
    classes: ClassTable | None
    label_divisor: int | None
    latency: LatencyHistogram
    counts: dict[str, int]


def merge_drives(folder: Path, drives: dict[str, Path], rows: dict[str, dict[str, Any]]
                 ) -> FleetTotals:
    """Add up the statistics of the drives without error, reading their files one at a
    time in drive-name order. A drive scored with another class table, label divisor
    or windows than the first one is marked failed (its statistics do not add up)."""
    totals = FleetTotals(None, None, None, LatencyHistogram(),
                         dict.fromkeys(("frames", "annotated_frames", "dropped_frames",
                                        "id_switches", "recoveries"), 0))
    reference: tuple | None = None
    first = None
    for name in drives:
        row = rows.get(name)
        if row is None or row["error"] is not None:
            continue
        data = json.loads((folder / f"{name}.json").read_text())
        key = (data["classes"], data["label_divisor"], data["windows"])
        if reference is None:
            reference, first = key, name
            totals.classes = ClassTable.from_dict(data["classes"])
            totals.label_divisor = data["label_divisor"]
            totals.stats = MetricStats.zeros(LabelSpace(totals.classes, totals.label_divisor),
                                             tuple(data["windows"]))
        elif key != reference:
            row["error"] = (f"scored with class table {data['classes']['name']!r}, label "
                            f"divisor {data['label_divisor']}, windows {data['windows']}, "
                            f"unlike drive {first!r} ({reference[0]['name']!r}, "
                            f"{reference[1]}, {reference[2]}): left out (give --classes)")
            continue
        for state in data["sequences"].values():
            totals.stats.merge(MetricStats.from_state_dict(state))
        totals.latency.merge(LatencyHistogram.from_state_dict(data["latency"]))
        for key_name in totals.counts:
            totals.counts[key_name] += data[key_name]
    return totals
