"""The record every dataset reader yields, whatever the source (synthetic generator,
Cityscapes-VPS, KITTI-STEP, VIPSeg, rosbag2), and the protocol of a dataset."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np

from ..types import ClassTable


@dataclass
class VideoFrame:
    sequence: str                  # sequence (video) id, unique within the dataset
    index: int                     # frame index within the sequence, increasing
    stamp_ns: int                  # capture time; synthetic data: index / frame rate
    image: np.ndarray              # (H, W, 3) uint8 RGB
    panoptic: np.ndarray | None    # (H, W) int32 class*label_divisor + id; None if unannotated


class VideoDataset(Protocol):
    """Frames ordered by sequence, then index; panoptic maps use ``label_divisor`` and
    ``classes`` (void pixels: ``classes.void_id * label_divisor``)."""

    classes: ClassTable
    label_divisor: int

    def __iter__(self) -> Iterator[VideoFrame]: ...


class RandomAccessDataset(VideoDataset, Protocol):
    """A dataset that also reads single frames: what streaming training needs."""

    def annotated_keys(self) -> list[tuple[str, int]]: ...

    def get(self, sequence: str, index: int) -> VideoFrame: ...
