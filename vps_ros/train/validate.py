"""Validation: panoptic quality of a segmenter on annotated frames."""
from __future__ import annotations

from itertools import islice
from typing import Iterable, Iterator

import numpy as np

from ..data.frames import VideoFrame
from ..metrics import panoptic_quality
from ..model import MaskSegmenter
from ..panoptic import from_segments
from ..types import FrameSegments


def segments_to_panoptic(segments: FrameSegments, label_divisor: int, void_id: int
                         ) -> np.ndarray:
    """Panoptic map of one frame's segments: things numbered 1, 2, ... in segment
    order, stuff with instance 0."""
    instance_ids = np.where(segments.is_thing, np.cumsum(segments.is_thing), 0)
    return from_segments(segments.segment_map, segments.class_ids, instance_ids,
                         label_divisor, void_id)


def panoptic_quality_of(segmenter: MaskSegmenter, frames: Iterable[VideoFrame],
                        label_divisor: int, batch_size: int = 8) -> dict:
    """PQ, PQ_things, PQ_stuff, SQ, RQ and per_class (fractions) on ``frames``.

    Streamed: ``frames`` may be a generator, and no frame is kept after its batch."""
    return panoptic_quality(_pairs(segmenter, iter(frames), label_divisor, batch_size),
                            segmenter.classes, label_divisor)


def _pairs(segmenter: MaskSegmenter, frames: Iterator[VideoFrame], label_divisor: int,
           batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while chunk := list(islice(frames, batch_size)):
        for frame, segments in zip(chunk, segmenter.segment([f.image for f in chunk])):
            yield frame.panoptic, segments_to_panoptic(segments, label_divisor,
                                                       segmenter.classes.void_id)
