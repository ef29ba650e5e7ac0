"""Validation: panoptic quality of a segmenter on annotated frames."""
from __future__ import annotations

from typing import Sequence

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


def panoptic_quality_of(segmenter: MaskSegmenter, frames: Sequence[VideoFrame],
                        label_divisor: int, batch_size: int = 8) -> dict:
    """PQ, PQ_things, PQ_stuff, SQ, RQ and per_class (fractions) on ``frames``."""
    pairs = []
    for start in range(0, len(frames), batch_size):
        chunk = frames[start:start + batch_size]
        for frame, segments in zip(chunk, segmenter.segment([f.image for f in chunk])):
            pairs.append((frame.panoptic, segments_to_panoptic(
                segments, label_divisor, segmenter.classes.void_id)))
    return panoptic_quality(pairs, segmenter.classes, label_divisor)
