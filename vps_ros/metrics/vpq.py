"""Video panoptic quality (VPQ, seed 001 section III-B, eq. 1) from per-frame tables.

A window of ``n`` consecutive annotated frames forms tubes: all pixels of the window
with the same panoptic id. Ground-truth and predicted tubes of the same class match
when their tube IoU exceeds 0.5; void and crowd are handled as in image PQ (and as
in the evaluation script released with Cityscapes-VPS):

- a tube's union leaves out the pixels where the predicted tube lies on void;
- crowd ground truth (a thing class with instance 0) is neither TP nor FN;
- an unmatched predicted tube is not a FP when more than half of it lies on void or
  on crowd of its own class.

IoU sums and TP / FP / FN counts are accumulated per class over every window of
every sequence; ``VPQ^n = mean_c IoU_c / (TP_c + FP_c / 2 + FN_c / 2)`` over the
classes with any TP, FP or FN, and VPQ is the mean over the window sizes.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .labels import LabelSpace
from .tables import PairTable


@dataclass(frozen=True)
class TubeCounts:
    """One window's per-class result (arrays of length ``num_classes``)."""

    iou: np.ndarray  # float64: summed IoU of the matched tubes
    tp: np.ndarray   # int64
    fp: np.ndarray
    fn: np.ndarray


@dataclass(frozen=True)
class GroundTruthSegments:
    """Per ground-truth segment (index = the segment's row in the pair table).

    ``category`` is a class index, ``num_classes`` for none (void, or a class the
    evaluation does not score). ``void`` pixels are left out of every union and make
    predictions on them not FP; ``crowd`` segments are neither TP nor FN; an
    ``absorbs`` segment (crowd) makes unmatched predictions of its category lying on it
    not FP. ``area`` is the segment's area (COCO takes it from the JSON, not the PNG).
    """

    category: np.ndarray  # int64
    area: np.ndarray      # int64 or float64
    void: np.ndarray      # bool
    crowd: np.ndarray     # bool
    absorbs: np.ndarray   # bool


def match_segments(g: np.ndarray, p: np.ndarray, count: np.ndarray, gt: GroundTruthSegments,
                   pred_category: np.ndarray, pred_area: np.ndarray, num_classes: int
                   ) -> TubeCounts:
    """Match segments given their pair table in segment indices: pair ``k`` has
    ``count[k]`` pixels of ground-truth segment ``g[k]`` and predicted segment ``p[k]``.

    A pair of one category is a TP when IoU > 0.5 (seed 001 eq. 1; panopticapi's
    ``pq_compute``); every such pair counts. Predicted segments of category
    ``num_classes`` (void) are never TP or FP.
    """
    nc = num_classes
    gt_class = gt.category
    same_class = gt_class[g] == pred_category[p]
    n_pred = len(pred_category)
    on_void = np.bincount(p, count * gt.void[g], n_pred)
    on_crowd = np.bincount(p, count * (gt.absorbs[g] & same_class), n_pred)

    candidate = same_class & (gt_class[g] < nc) & ~gt.crowd[g]
    union = pred_area[p] + gt.area[g] - count - on_void[p]
    iou = np.where(candidate, count / np.where(candidate, union, 1), 0.0)
    matched = candidate & (iou > 0.5)

    gt_matched = np.zeros(len(gt_class), bool)
    gt_matched[g[matched]] = True
    pred_matched = np.zeros(n_pred, bool)
    pred_matched[p[matched]] = True
    missed = ~gt_matched & (gt_class < nc) & ~gt.crowd
    ignored = (on_void + on_crowd) / np.maximum(pred_area, 1) > 0.5
    spurious = ~pred_matched & (pred_category < nc) & ~ignored

    match_class = gt_class[g[matched]]
    return TubeCounts(
        iou=np.bincount(match_class, iou[matched], nc),
        tp=np.bincount(match_class, minlength=nc).astype(np.int64),
        fp=np.bincount(pred_category[spurious], minlength=nc).astype(np.int64),
        fn=np.bincount(gt_class[missed], minlength=nc + 1)[:nc].astype(np.int64))


def match_tubes(table: PairTable, space: LabelSpace) -> TubeCounts:
    """Match the tubes of one window, given the window's summed pair table.

    Package encoding: void is the void class, crowd a thing class with instance 0 (one
    crowd id per class, so every crowd pixel of the class absorbs predictions).
    """
    gt_ids, g = np.unique(table.gt, return_inverse=True)
    pred_ids, p = np.unique(table.pred, return_inverse=True)
    gt_class, pred_class = space.class_index(gt_ids), space.class_index(pred_ids)
    gt_crowd = space.is_thing[gt_class] & (space.instance(gt_ids) == 0)
    gt = GroundTruthSegments(category=gt_class, area=np.bincount(g, table.count, len(gt_ids)),
                             void=gt_class == space.num_classes, crowd=gt_crowd,
                             absorbs=gt_crowd)
    return match_segments(g, p, table.count, gt, pred_class,
                          np.bincount(p, table.count, len(pred_ids)), space.num_classes)


@dataclass
class VpqStats:
    """IoU sums and TP / FP / FN per (window size, class); merged by adding."""

    windows: tuple[int, ...]
    iou: np.ndarray  # (W, C) float64
    tp: np.ndarray   # (W, C) int64
    fp: np.ndarray
    fn: np.ndarray

    @classmethod
    def zeros(cls, windows: tuple[int, ...], num_classes: int) -> "VpqStats":
        shape = (len(windows), num_classes)
        return cls(tuple(windows), np.zeros(shape), *(np.zeros(shape, np.int64) for _ in range(3)))

    def add(self, window_row: int, counts: TubeCounts) -> None:
        self.iou[window_row] += counts.iou
        self.tp[window_row] += counts.tp
        self.fp[window_row] += counts.fp
        self.fn[window_row] += counts.fn

    def merge(self, other: "VpqStats") -> None:
        if other.windows != self.windows:
            raise ValueError(f"cannot merge VPQ stats of windows {other.windows} into {self.windows}")
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn


class VpqStream:
    """VPQ of one sequence, fed frame tables in order.

    Holds only the last ``max(windows)`` tables: every window ending at the newest
    frame is the sum of the newest tables, so each window size is scored without
    going back to pixels.
    """

    def __init__(self, space: LabelSpace, windows: tuple[int, ...]) -> None:
        self.space = space
        self.stats = VpqStats.zeros(windows, space.num_classes)
        self._row_of_size = {size: row for row, size in enumerate(windows)}
        self._recent: deque[PairTable] = deque(maxlen=max(windows))

    def add(self, table: PairTable) -> VpqStats:
        """Add a frame; returns the counts of the windows that end at it (summed over a
        sequence's frames they are its statistics: each window belongs to one frame)."""
        self._recent.appendleft(table)
        ending = VpqStats.zeros(self.stats.windows, self.space.num_classes)
        window = None
        for size, frame in enumerate(self._recent, start=1):
            window = frame if window is None else PairTable.combine([window, frame])
            if size in self._row_of_size:
                counts = match_tubes(window, self.space)
                self.stats.add(self._row_of_size[size], counts)
                ending.add(self._row_of_size[size], counts)
        return ending
