"""Segmentation and tracking quality (STQ, Weber et al. 2021, "STEP") from frame tables.

``STQ = sqrt(AQ * SQ)``.

- SQ: mean IoU over the semantic classes, from one confusion matrix over every
  pixel of the dataset. Void ground-truth pixels are dropped; a prediction of void
  on a labelled pixel counts against that pixel's class. Classes with an empty union
  are left out of the mean.
- AQ: for every ground-truth track ``g`` of a sequence (a thing class, instance > 0),
  ``(1/|g|) sum_p TPA(p,g) IoU_id(p,g)`` over the predicted thing tracks ``p``
  overlapping it, where ``TPA = |p & g|`` over the whole sequence and
  ``IoU_id = TPA / (|p| + |g| - TPA)``; AQ is the sum over all tracks of all sequences
  divided by the number of tracks. Crowd pixels (thing class, instance 0 in ground
  truth) belong to no track and are left out of predicted tracks; void ground truth
  is not (as in the reference implementation released with KITTI-STEP).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import LabelSpace
from .tables import PairTable, sum_by_key


@dataclass
class StqStats:
    """The parts of STQ that add up over sequences."""

    confusion: np.ndarray  # (C+1, C+1) int64 pixels: gt class rows, pred class columns, void last
    aq_sum: float          # sum over ground-truth tracks of their association quality
    num_tracks: int

    @classmethod
    def zeros(cls, num_classes: int) -> "StqStats":
        return cls(np.zeros((num_classes + 1, num_classes + 1), np.int64), 0.0, 0)

    def merge(self, other: "StqStats") -> None:
        self.confusion += other.confusion
        self.aq_sum += other.aq_sum
        self.num_tracks += other.num_tracks

    def class_iou(self) -> np.ndarray:
        """IoU per semantic class; NaN where the union is empty."""
        nc = len(self.confusion) - 1
        labelled = self.confusion[:nc]          # void ground-truth rows dropped
        inter = np.diag(labelled).astype(np.float64)
        union = labelled.sum(axis=1) + labelled[:, :nc].sum(axis=0) - inter
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)

    def sq(self) -> float | None:
        iou = self.class_iou()
        return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else None

    def aq(self) -> float | None:
        return self.aq_sum / self.num_tracks if self.num_tracks else None

    def stq(self) -> float | None:
        aq, sq = self.aq(), self.sq()
        return None if aq is None or sq is None else float(np.sqrt(aq * sq))


@dataclass(frozen=True)
class StqFrame:
    """One frame's additive STQ parts: its confusion cells and the pixels of its
    ground-truth tracks, predicted thing tracks and their overlaps. A sequence's AQ is a
    function of these parts summed over its frames (what a block bootstrap resamples)."""

    confusion: PairTable       # (gt class, pred class) -> pixels
    gt_size: tuple[np.ndarray, np.ndarray]    # (track ids, pixels)
    pred_size: tuple[np.ndarray, np.ndarray]
    overlap: PairTable         # (gt track, pred track) -> pixels


def frame_parts(table: PairTable, space: LabelSpace) -> StqFrame:
    """The STQ parts of one frame's pair table (crowd left out of predicted tracks)."""
    gt_class, pred_class = space.class_index(table.gt), space.class_index(table.pred)
    classes = PairTable.combine([PairTable(gt_class.astype(np.int64),
                                           pred_class.astype(np.int64), table.count)])
    gt_thing = space.is_thing[gt_class]
    gt_track = gt_thing & (space.instance(table.gt) != 0)
    crowd = gt_thing & ~gt_track
    pred_track = space.is_thing[pred_class]
    in_pred = pred_track & ~crowd
    return StqFrame(classes, sum_by_key(table.gt[gt_track], table.count[gt_track]),
                    sum_by_key(table.pred[in_pred], table.count[in_pred]),
                    table.select(gt_track & pred_track))


class StqStream:
    """STQ parts of one sequence, fed frame tables in order.

    Keeps, for the sequence so far, the size of every ground-truth track and of every
    predicted thing track and their overlaps: sizes grow with the number of tracks,
    not with the number of frames.
    """

    def __init__(self, space: LabelSpace) -> None:
        self.space = space
        self._confusion = np.zeros((space.num_classes + 1,) * 2, np.int64)
        self._gt_size = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._pred_size = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._overlap = PairTable.empty()

    def add(self, table: PairTable) -> StqFrame:
        """Add a frame; returns its parts."""
        parts = frame_parts(table, self.space)
        np.add.at(self._confusion, (parts.confusion.gt, parts.confusion.pred),
                  parts.confusion.count)
        self._gt_size = _add_counts(self._gt_size, *parts.gt_size)
        self._pred_size = _add_counts(self._pred_size, *parts.pred_size)
        self._overlap = PairTable.combine([self._overlap, parts.overlap])
        return parts

    def finish(self) -> StqStats:
        gt_ids, gt_size = self._gt_size
        pred_ids, pred_size = self._pred_size
        tpa = self._overlap.count.astype(np.float64)
        size_g = gt_size[np.searchsorted(gt_ids, self._overlap.gt)]
        size_p = pred_size[np.searchsorted(pred_ids, self._overlap.pred)]
        aq_sum = float(np.sum(tpa * (tpa / (size_p + size_g - tpa)) / size_g))
        return StqStats(self._confusion.copy(), aq_sum, len(gt_ids))


def _add_counts(current: tuple[np.ndarray, np.ndarray], ids: np.ndarray, counts: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    return sum_by_key(np.concatenate([current[0], ids]), np.concatenate([current[1], counts]))
