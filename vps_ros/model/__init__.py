"""The segmenter: RGB images in, :class:`~vps_ros.types.FrameSegments` out.

``MaskSegmenter`` is the interface every backend implements (panoptic segments plus an
association embedding per segment); ``Segmenter`` is our kMaX-style mask transformer in
plain torch; :mod:`vps_ros.model.registry` maps what the ``model`` parameter names to
a backend. ``PostprocessConfig`` holds the thresholds of the one mask-wise merge and
may be changed between calls.
"""
from .config import ModelConfig, PostprocessConfig
from .mask_segmenter import MaskSegmenter
from .segmenter import Segmenter

__all__ = ["MaskSegmenter", "ModelConfig", "PostprocessConfig", "Segmenter"]
