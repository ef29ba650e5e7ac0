"""Fast reading of COCO-style segment-id PNGs (id = R + 256 G + 256^2 B) and mapping of
the ids to a small range (the row of each segment in its JSON ``segments_info``).

A per-pixel ``np.unique`` sorts every pixel; here each pixel costs a multiply, a shift
and two table look-ups: the ids of the JSON are hashed into a table of a few thousand
slots (multiplicative hashing, constant re-drawn until no two ids share a slot), and a
pixel whose id is not in the table is found by comparing the slot's id with its own.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ...errors import DataError

_MAX_ID = 256 ** 3
_EMPTY = np.uint32(0xFFFFFFFF)  # never an id (ids are < 2^24)
_GOLDEN, _STEP = 0x9E3779B1, 0x6A09E667  # odd multipliers, tried in turn


def read_id_png(path: Path, what: str = "panoptic PNG") -> np.ndarray:
    """Segment ids (H, W) uint32 of an 8-bit RGB(A) PNG; DataError naming ``path``."""
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgr is None or bgr.size == 0:
        raise DataError(f"{path}: cannot decode the {what} (corrupt or not an image)")
    if bgr.ndim != 3 or bgr.dtype != np.uint8:
        raise DataError(f"{path}: expected an 8-bit RGB {what}, got {bgr.dtype} of shape "
                        f"{bgr.shape}")
    return rgba_ids(cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGBA if bgr.shape[2] == 4
                                 else cv2.COLOR_BGR2RGBA))


def rgba_ids(rgba: np.ndarray) -> np.ndarray:
    """R + 256 G + 256^2 B of a contiguous (H, W, 4) uint8 array, read as little-endian
    32-bit words with the alpha byte masked off."""
    words = np.ascontiguousarray(rgba).view("<u4")[..., 0]
    return np.bitwise_and(words, np.uint32(_MAX_ID - 1))


class SegmentLookup:
    """Row of each id of ``ids`` (distinct, 0 <= id < 2^32 - 1: ids from 2^24 on match no
    pixel of a PNG); ids not among them get ``len(ids)``."""

    def __init__(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= int(_EMPTY)):
            raise ValueError("segment ids must lie in 0..2^32-2")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("segment ids must be distinct")
        self.size = len(ids)
        bits = max(10, int(np.ceil(np.log2(max(len(ids), 1)))) + 6)
        ids32 = ids.astype(np.uint32)
        self._shift = np.uint32(32 - bits)
        for attempt in range(64):
            self._factor = np.uint32((_GOLDEN + 2 * attempt * _STEP) & 0xFFFFFFFF)
            slots = self._slots(ids32)
            if np.bincount(slots, minlength=1).max(initial=0) <= 1:
                break
        else:
            raise ValueError("no collision-free hash found")  # ~1e-40 for distinct ids
        self._key = np.full(1 << bits, _EMPTY, np.uint32)
        self._key[slots] = ids32
        self._row = np.full(1 << bits, len(ids), np.int32)
        self._row[slots] = np.arange(len(ids), dtype=np.int32)

    def _slots(self, ids: np.ndarray) -> np.ndarray:
        return np.right_shift(np.multiply(ids, self._factor), self._shift)

    def rows(self, id_map: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(row of every pixel as int32, the ids not in the table or None)."""
        id_map = np.asarray(id_map, np.uint32)
        slots = self._slots(id_map)
        rows = self._row.take(slots)
        stray = np.not_equal(self._key.take(slots), id_map)
        if not stray.any():
            return rows, None
        rows[stray] = self.size
        return rows, np.unique(id_map[stray])
