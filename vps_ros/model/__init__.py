"""The segmenter: a kMaX-style mask transformer in plain torch (issue 5).

``Segmenter`` turns RGB images into :class:`~vps_ros.types.FrameSegments` (panoptic
segments plus an association embedding per segment); ``PostprocessConfig`` holds the
thresholds of its mask-wise merge and may be changed between calls.
"""
from .config import ModelConfig, PostprocessConfig
from .segmenter import Segmenter

__all__ = ["ModelConfig", "PostprocessConfig", "Segmenter"]
