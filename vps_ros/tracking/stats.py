"""Matching-space size M x N per frame (seed 002, Table 6), summarised in bounded memory."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MatchingSpace:
    """Running summary of the similarity-matrix sizes of the frames a tracker decoded.

    M is the number of stored objects and N the number of detections that enter the
    last matching stage of a frame (for HiLA-MB near-online: those left after video
    stitching; for IoU stitching: previous-frame objects x current detections). Every
    frame counts, an empty memory as 0. Only sums are kept, so a node running for
    days does not grow a list; per-sequence summaries combine with :meth:`merge`.
    """

    frames: int = 0
    total: int = 0          # sum of M * N over the frames
    largest: int = 0        # max of M * N
    last: tuple[int, int] = (0, 0)

    @property
    def mean(self) -> float:
        return self.total / self.frames if self.frames else 0.0

    def record(self, stored: int, detected: int) -> None:
        size = stored * detected
        self.frames += 1
        self.total += size
        self.largest = max(self.largest, size)
        self.last = (stored, detected)

    def merge(self, other: "MatchingSpace") -> "MatchingSpace":
        """Summary of both (e.g. of several sequences); ``last`` is ``other``'s."""
        return MatchingSpace(self.frames + other.frames, self.total + other.total,
                             max(self.largest, other.largest), other.last)
