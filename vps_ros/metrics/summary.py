"""Accumulated statistics -> the result dictionaries (fractions in [0, 1], JSON-able).

A mean over no classes is undefined and reported as ``None`` (JSON null), never as
a made-up 0: e.g. VPQ^n when no sequence has n annotated frames, AQ without any
ground-truth track.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .stq import StqStats
from ..types import ClassTable
from .vpq import VpqStats


def panoptic_qualities(stats: VpqStats, row: int) -> dict[str, np.ndarray]:
    """Per-class PQ, SQ, RQ of one window size; NaN for classes without TP, FP or FN."""
    iou, tp = stats.iou[row], stats.tp[row]
    denominator = tp + 0.5 * stats.fp[row] + 0.5 * stats.fn[row]
    counted = denominator > 0
    safe = np.maximum(denominator, 0.5)
    return {"PQ": np.where(counted, iou / safe, np.nan),
            "SQ": np.where(counted, np.where(tp > 0, iou / np.maximum(tp, 1), 0.0), np.nan),
            "RQ": np.where(counted, tp / safe, np.nan)}


def class_mean(values: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean over the classes in ``mask`` where ``values`` is defined (not NaN)."""
    chosen = values[mask & ~np.isnan(values)]
    return float(chosen.mean()) if chosen.size else None


def image_result(stats: VpqStats, classes: ClassTable) -> dict[str, Any]:
    """PQ / SQ / RQ (All, Things, Stuff) and per class, from window-size-1 statistics."""
    q = panoptic_qualities(stats, 0)
    every = np.ones(len(classes), bool)
    things = classes.is_thing_lut
    per_class = {c.name: {"PQ": _opt(q["PQ"][c.id]), "SQ": _opt(q["SQ"][c.id]),
                          "RQ": _opt(q["RQ"][c.id]), "TP": int(stats.tp[0, c.id]),
                          "FP": int(stats.fp[0, c.id]), "FN": int(stats.fn[0, c.id])}
                 for c in classes}
    return {"PQ": class_mean(q["PQ"], every), "PQ_things": class_mean(q["PQ"], things),
            "PQ_stuff": class_mean(q["PQ"], ~things), "SQ": class_mean(q["SQ"], every),
            "RQ": class_mean(q["RQ"], every), "per_class": per_class}


def video_result(vpq: VpqStats, stq: StqStats, classes: ClassTable) -> dict[str, Any]:
    """VPQ (per window size, All / Things / Stuff, per class) and STQ / AQ / SQ."""
    every = np.ones(len(classes), bool)
    things = classes.is_thing_lut
    pq = [panoptic_qualities(vpq, row)["PQ"] for row in range(len(vpq.windows))]
    groups = {"": every, "_things": things, "_stuff": ~things}
    result: dict[str, Any] = {}
    for suffix, mask in groups.items():
        per_window = {str(n): class_mean(pq[row], mask) for row, n in enumerate(vpq.windows)}
        result[f"VPQ{suffix}"] = _mean_if_defined(list(per_window.values()))
        result[f"VPQ{suffix}_windows"] = per_window
    result.update(STQ=stq.stq(), AQ=stq.aq(), SQ=stq.sq(), windows=list(vpq.windows),
                  num_tracks=stq.num_tracks)
    iou = stq.class_iou()
    result["per_class"] = {c.name: _class_entry(c.id, c.is_thing, vpq, pq, iou) for c in classes}
    return result


def _class_entry(class_id: int, is_thing: bool, vpq: VpqStats, pq: list[np.ndarray],
                 iou: np.ndarray) -> dict[str, Any]:
    windows = {str(n): {"VPQ": _opt(pq[row][class_id]), "IoU_sum": float(vpq.iou[row, class_id]),
                        "TP": int(vpq.tp[row, class_id]), "FP": int(vpq.fp[row, class_id]),
                        "FN": int(vpq.fn[row, class_id])}
               for row, n in enumerate(vpq.windows)}
    return {"id": class_id, "is_thing": bool(is_thing),
            "VPQ": _mean_if_defined([w["VPQ"] for w in windows.values()]),
            "IoU": _opt(iou[class_id]), "windows": windows}


def _mean_if_defined(values: list[float | None]) -> float | None:
    """VPQ = mean over the window sizes; undefined if any window size is."""
    return None if any(v is None for v in values) else float(np.mean(values))


def _opt(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
