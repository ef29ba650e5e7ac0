"""Fast reading of COCO-style segment-id PNGs (id = R + 256 G + 256^2 B) and mapping of
the ids to a small range (the row of each segment in its JSON ``segments_info``).

A per-pixel ``np.unique`` sorts every pixel. Here a map is first cut into runs: pixels
in raster order over which the map (or both maps of a pair) stays the same, found by
one comparison of neighbouring 32-bit words; a 640x480 COCO map has a few thousand,
against 307,200 pixels. Only the runs' ids are looked up (:class:`SegmentLookup`), and
pixel counts are the runs' lengths added up
(``np.bincount`` with weights).
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ...errors import DataError
from .png import read_label

_MAX_ID = 256 ** 3


def read_id_words(path: Path, what: str = "panoptic PNG") -> np.ndarray:
    """(H, W) uint32 words of an 8-bit RGB(A) PNG: the segment id in the low 24 bits
    (see :func:`ids`), alpha in the top 8; DataError naming ``path``."""
    rgba = read_label(path, what)
    if rgba.ndim != 3 or rgba.dtype != np.uint8:
        raise DataError(f"{path}: expected an 8-bit RGB {what}, got {rgba.dtype} of shape "
                        f"{rgba.shape}")
    return rgba_words(rgba)


def rgba_words(rgba: np.ndarray) -> np.ndarray:
    """A contiguous (H, W, 4) uint8 array read as little-endian 32-bit words,
    R + 256 G + 256^2 B + 256^3 A."""
    return np.ascontiguousarray(rgba).view("<u4")[..., 0]


def ids(words: np.ndarray) -> np.ndarray:
    """Segment ids R + 256 G + 256^2 B of :func:`rgba_words` (alpha masked off)."""
    return np.bitwise_and(words, np.uint32(_MAX_ID - 1))


def runs(*maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first pixel, length) of each run of raster order over which every map of
    ``maps`` (same shape) keeps its value; int64, lengths add up to the pixel count."""
    flat = [np.ravel(m) for m in maps]
    size = flat[0].size
    change = np.empty(size, bool)
    change[:1] = True
    np.not_equal(flat[0][1:], flat[0][:-1], out=change[1:])
    for other in flat[1:]:
        change[1:] |= other[1:] != other[:-1]
    starts = np.flatnonzero(change)
    lengths = np.empty_like(starts)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1:] = size - starts[-1:]
    return starts, lengths


class SegmentLookup:
    """Row of each id of ``ids`` (distinct integers; ids from 2^24 on match no pixel of a
    PNG); ids not among them get ``len(ids)``.

    The look-up is a table over the whole 24-bit id space, one per thread (32 MiB of
    address space, of which only the pages of ids met are ever touched): the rows are
    written into it for one image, every run's id is read back in one gather, and the
    entries are cleared again. A binary search among the ids costs ~4x more, nearly
    all of it holding the GIL, which kept threads from scaling (docs/benchmarks.md).
    """

    def __init__(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, np.int64)
        self.size = len(ids)
        if len(set(ids.tolist())) < self.size:
            raise ValueError("segment ids must be distinct")
        if self.size >= _NONE:
            raise DataError(f"{self.size} segments in one image: at most {_NONE - 1} are read")
        colour = ids < _MAX_ID
        self._ids = ids[colour]
        self._rows = np.flatnonzero(colour).astype(np.uint16) + 1

    def rows(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(row of every value as int64, the values not among the ids or None);
        ``values`` are pixel ids (0 <= value < 2^24, see :func:`ids`)."""
        table = _table()
        table[self._ids] = self._rows
        try:
            found = table.take(values)
        finally:
            table[self._ids] = 0
        rows = found.astype(np.int64)
        rows -= 1
        missing = found == 0
        if not missing.any():
            return rows, None
        rows[missing] = self.size
        return rows, np.unique(np.asarray(values)[missing])


_NONE = 2 ** 16 - 1
_local = threading.local()


def _table() -> np.ndarray:
    """This thread's id -> row + 1 table (0: none), zeroed by the kernel on first touch."""
    table = getattr(_local, "table", None)
    if table is None:
        table = _local.table = np.zeros(_MAX_ID, np.uint16)
    return table
