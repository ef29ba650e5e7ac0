"""Image PQ of COCO panoptic files, with the conventions of panopticapi's ``pq_compute``
(Kirillov et al., Panoptic Segmentation, CVPR 2019, eq. 1), on the metric core's
matching (:func:`~vps_ros.metrics.vpq.match_segments`).

What differs from the package encoding of the video metrics is only which segments
exist and what they are: every segment of the JSON is its own segment (several of
one stuff class stay apart); ``iscrowd`` of a ground-truth segment, thing or stuff,
makes it neither TP nor FN, and only the last crowd segment of a category in
``segments_info`` order makes unmatched predictions of that category on it not FP;
the ground truth's area is the JSON's ``area``.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any, Callable, Protocol

import numpy as np

from .vpq import GroundTruthSegments, TubeCounts, match_segments

SPLITS = (("All", None), ("Things", True), ("Stuff", False))


class Overlaps(Protocol):
    """One image pair (see ``vps_ros.data.formats.coco_images.ImageOverlaps``)."""

    gt_category: np.ndarray
    gt_crowd: np.ndarray
    gt_void: np.ndarray
    gt_area: np.ndarray
    pred_category: np.ndarray
    pred_area: np.ndarray
    g: np.ndarray
    p: np.ndarray
    count: np.ndarray


class CategoryIndex:
    """COCO category ids (non-contiguous) -> rows 0..C-1 of the per-class arrays; any
    other id -> C (none)."""

    def __init__(self, categories: list[dict]) -> None:
        self.categories = categories
        self.ids = [c["id"] for c in categories]
        row_of = {cid: row for row, cid in enumerate(self.ids)}  # a repeated id: its last
        known = sorted(c for c in row_of if isinstance(c, int))
        self._sorted = np.array(known, np.int64)
        self._rows = np.array([row_of[c] for c in known], np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, category_ids: np.ndarray) -> np.ndarray:
        if not len(self._sorted):
            return np.full(len(category_ids), len(self.ids), np.int64)
        at = np.minimum(np.searchsorted(self._sorted, category_ids), len(self._sorted) - 1)
        return np.where(self._sorted[at] == category_ids, self._rows[at], len(self.ids))


def score_batch(images: list[Overlaps], index: CategoryIndex) -> TubeCounts:
    """Per-class sums over ``images``, matched in one call of the metric core: the
    images' segments are numbered one after the other, so a pair never joins two
    images, and the per-image work in Python is a few list operations."""
    parts: dict[str, list[np.ndarray]] = {key: [] for key in (
        "g", "p", "count", "category", "area", "void", "crowd", "absorbs", "pred_category",
        "pred_area")}
    gt_offset = pred_offset = 0
    for image in images:
        crowd = image.gt_crowd.astype(bool)
        last = {int(image.gt_category[row]): row for row in np.flatnonzero(crowd).tolist()}
        absorbs = np.zeros(len(crowd), bool)
        absorbs[list(last.values())] = True
        for key, value in (("g", image.g + gt_offset), ("p", image.p + pred_offset),
                           ("count", image.count), ("category", image.gt_category),
                           ("area", image.gt_area), ("void", image.gt_void.astype(bool)),
                           ("crowd", crowd), ("absorbs", absorbs),
                           ("pred_category", image.pred_category),
                           ("pred_area", image.pred_area)):
            parts[key].append(value)
        gt_offset += len(crowd)
        pred_offset += len(image.pred_category)
    joined = {key: np.concatenate(values) for key, values in parts.items()}
    gt = GroundTruthSegments(category=index.rows(joined["category"]), area=joined["area"],
                             void=joined["void"], crowd=joined["crowd"],
                             absorbs=joined["absorbs"])
    return match_segments(joined["g"], joined["p"], joined["count"], gt,
                          index.rows(joined["pred_category"]), joined["pred_area"], len(index))


def score_images(load: Callable[[int], Overlaps], count: int, index: CategoryIndex,
                 threads: int, progress: Callable[[int], None] | None = None,
                 batch: int = 32) -> TubeCounts:
    """Per-class sums over images ``0..count-1`` read by ``load``, ``threads`` at a
    time, ``batch`` images per call of :func:`score_batch`; the counts are exact
    integers, the IoUs added in image order.

    Threads, not the package's process pool: PNG decoding and the array passes release
    the GIL, and a spawned worker spends ~0.3 s importing numpy and the readers, as
    long as a hundred images take (docs/benchmarks.md)."""
    def one(start: int) -> TubeCounts:
        images = [load(k) for k in range(start, min(start + batch, count))]
        counts = score_batch(images, index)
        if progress is not None:
            progress(len(images))
        return counts

    nc = len(index)
    total = TubeCounts(np.zeros(nc), *(np.zeros(nc, np.int64) for _ in range(3)))
    batch = max(1, min(batch, -(-count // threads)))   # every thread gets work
    starts = range(0, count, batch)
    with ThreadPoolExecutor(threads) if threads > 1 else nullcontext() as pool:
        for counts in (pool.map(one, starts) if pool else map(one, starts)):
            total.iou[:] += counts.iou
            total.tp[:] += counts.tp
            total.fp[:] += counts.fp
            total.fn[:] += counts.fn
    return total


def coco_result(counts: TubeCounts, index: CategoryIndex) -> dict[str, Any]:
    """``All`` / ``Things`` / ``Stuff`` (pq, sq, rq, n) and ``per_class`` (pq, sq, rq, tp,
    fp, fn by category id), averaged as panopticapi's ``pq_average``: the mean over the
    categories with any TP, FP or FN; a category with none has 0.0 (as panopticapi). A
    split with no such category has -1.0 and n = 0 (panopticapi divides by zero there;
    -1 is hotcoco's answer, and COCO's ``-1`` for "nothing to score")."""
    per_class: dict[str, dict[str, Any]] = {}
    rows: dict[str, list[dict[str, float]]] = {name: [] for name, _ in SPLITS}
    for row, category in enumerate(index.categories):
        iou, tp, fp, fn = (float(counts.iou[row]), int(counts.tp[row]), int(counts.fp[row]),
                           int(counts.fn[row]))
        entry: dict[str, Any] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
        if tp + fp + fn:
            denominator = tp + 0.5 * fp + 0.5 * fn
            entry = {"pq": iou / denominator, "sq": iou / tp if tp else 0.0,
                     "rq": tp / denominator}
            for name, thing in SPLITS:
                if thing is None or thing == (category["isthing"] == 1):
                    rows[name].append(entry)
        per_class[str(category["id"])] = {**entry, "tp": tp, "fp": fp, "fn": fn}
    result: dict[str, Any] = {}
    for name, _ in SPLITS:
        scored = rows[name]
        result[name] = {key: (sum(e[key] for e in scored) / len(scored) if scored else -1.0)
                        for key in ("pq", "sq", "rq")}
        result[name]["n"] = len(scored)
    result["per_class"] = per_class
    return result


def coco_table(result: dict[str, Any]) -> str:
    """The table panopticapi prints (percent, one decimal); a split with n = 0 prints
    ``-`` (as hotcoco)."""
    lines = ["{:10s}| {:>5s}  {:>5s}  {:>5s} {:>5s}".format("", "PQ", "SQ", "RQ", "N"),
             "-" * (10 + 7 * 4)]
    for name, _ in SPLITS:
        s = result[name]
        if s["n"]:
            lines.append("{:10s}| {:5.1f}  {:5.1f}  {:5.1f} {:5d}".format(
                name, *(100 * s[k] for k in ("pq", "sq", "rq")), s["n"]))
        else:
            lines.append("{:10s}| {:>5s}  {:>5s}  {:>5s} {:5d}".format(name, "-", "-", "-", 0))
    return "\n".join(lines)
