"""Per-frame sparse (ground-truth id, predicted id) -> pixel count tables.

Every metric of this package is a function of these tables: a segment's area is a sum
over its row or column, a tube's intersection over a window of frames is the sum of
the frames' tables, a track's over a whole sequence likewise. So pixels are read once
per frame, by :meth:`PairTable.from_maps`, and never again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Panoptic ids are non-negative int32, so (gt << 31) | pred is a unique int64 key.
_SHIFT = 31
_PRED_MASK = (1 << _SHIFT) - 1
# Ids up to this value are indexed by a lookup table (one bincount, one gather);
# larger label divisors fall back to a sort.
_LOOKUP_LIMIT = 1 << 22


@dataclass(frozen=True)
class PairTable:
    """Pixel counts of (gt id, pred id) pairs, sorted by (gt, pred), each pair once."""

    gt: np.ndarray     # (K,) int64
    pred: np.ndarray   # (K,) int64
    count: np.ndarray  # (K,) int64, > 0

    @classmethod
    def empty(cls) -> "PairTable":
        return cls(*(np.zeros(0, np.int64) for _ in range(3)))

    @classmethod
    def from_maps(cls, gt: np.ndarray, pred: np.ndarray) -> "PairTable":
        """The table of one frame; ``gt`` and ``pred`` are same-shape maps of ids >= 0."""
        gt_ids, gt_index = _dense_index(np.ravel(gt))
        pred_ids, pred_index = _dense_index(np.ravel(pred))
        joint = gt_index.astype(np.int64) * len(pred_ids) + pred_index
        counts = np.bincount(joint, minlength=len(gt_ids) * len(pred_ids))
        cells = np.flatnonzero(counts)
        return cls(gt_ids[cells // len(pred_ids)], pred_ids[cells % len(pred_ids)],
                   counts[cells].astype(np.int64))

    @classmethod
    def combine(cls, tables: Sequence["PairTable"]) -> "PairTable":
        """The table of the union of the tables' pixels (e.g. the frames of a window)."""
        keys = np.concatenate([(t.gt << _SHIFT) | t.pred for t in tables])
        counts = np.concatenate([t.count for t in tables])
        keys, counts = sum_by_key(keys, counts)
        return cls(keys >> _SHIFT, keys & _PRED_MASK, counts)

    def select(self, rows: np.ndarray) -> "PairTable":
        """The pairs where ``rows`` (bool, one per pair) is true."""
        return PairTable(self.gt[rows], self.pred[rows], self.count[rows])


def sum_by_key(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique keys and the sum of ``counts`` per key (exact int64)."""
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.zeros(len(unique), np.int64)
    np.add.at(sums, inverse, counts)
    return unique, sums


def _dense_index(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique values as int64, index of each value into them)."""
    top = int(values.max()) if values.size else 0
    if top >= _LOOKUP_LIMIT:
        unique, inverse = np.unique(values, return_inverse=True)
        return unique.astype(np.int64), inverse
    present = np.bincount(values, minlength=top + 1) > 0
    lookup = np.cumsum(present, dtype=np.int32) - 1
    return np.flatnonzero(present).astype(np.int64), lookup[values]
