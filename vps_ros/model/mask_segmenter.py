"""The segmenter interface every backend implements: RGB frames in, FrameSegments out.

A backend (our kMaX checkpoint in torch, a ``transformers`` panoptic model, an exported
network run by an inference engine) only turns a batch of images at its input size into
per-query predictions; what follows is shared: the one mask-wise merge
(:func:`~vps_ros.model.postprocess.merge_masks`) and the mapping back to each camera
image's size. The pipeline, the node, the replay and the benchmarks hold a
:class:`MaskSegmenter` and never ask which backend it is.
"""
from __future__ import annotations

import abc
import contextlib
import logging
from typing import Sequence

import cv2
import numpy as np
import torch

from ..errors import DataError
from ..types import ClassTable, FrameSegments
from .config import PostprocessConfig
from .postprocess import merge_masks, resize_segments

log = logging.getLogger(__name__)


class MaskSegmenter(abc.ABC):
    """Panoptic segmenter of the mask-transformer family (queries -> class + mask).

    Subclasses implement :meth:`predict`; ``postprocess`` may be replaced between calls
    (the node's run-time parameters).
    """

    def __init__(self, classes: ClassTable, device: str,
                 postprocess: PostprocessConfig | None = None) -> None:
        self.classes = classes
        self.device = device
        self.postprocess = postprocess or PostprocessConfig()
        self._is_thing = classes.is_thing_lut

    @property
    @abc.abstractmethod
    def input_size(self) -> tuple[int, int]:
        """(height, width) every image is resized to before the network."""

    @abc.abstractmethod
    def predict(self, batch: np.ndarray) -> dict[str, torch.Tensor]:
        """Per-query predictions for a (B, H, W, 3) RGB uint8 batch at :attr:`input_size`:
        ``class_logits`` (B, N, C + 1; the last is "no object"), ``mask_logits``
        (B, N, h, w on the network's mask grid) and ``embeddings`` (B, N, E), the
        association features of the queries."""

    def warm_up(self) -> None:
        """One call on a blank image: a network's first call is several times slower
        (allocations, kernel selection, compilation); pay it here rather than on the
        first camera frame."""
        self.segment([np.zeros(self.input_size + (3,), np.uint8)])

    def segment(self, images: Sequence[np.ndarray], at_input_resolution: bool = True
                ) -> list[FrameSegments]:
        """Segments of a batch of RGB uint8 images of any sizes.

        Each image is resized to :attr:`input_size`; with ``at_input_resolution`` the
        segment maps and boxes are mapped back to each image's own size, otherwise
        they stay at the model's input size.
        """
        if len(images) == 0:
            return []
        batch = np.stack([self._resize(image, i) for i, image in enumerate(images)])
        out = self.predict(batch)
        results = []
        for i, image in enumerate(images):
            segments = merge_masks(out["class_logits"][i], out["mask_logits"][i],
                                   out["embeddings"][i], self._is_thing, self.input_size,
                                   self.postprocess)
            if at_input_resolution:
                segments = resize_segments(segments, image.shape[:2], self._is_thing)
            results.append(segments)
        return results

    def _resize(self, image: np.ndarray, index: int) -> np.ndarray:
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            shape = getattr(image, "shape", None)
            raise DataError(f"image {index} of the batch: expected an (H, W, 3) RGB array, "
                            f"got shape {shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise DataError(f"image {index} of the batch is empty (shape {image.shape})")
        if image.dtype != np.uint8:
            raise DataError(f"image {index} of the batch: expected uint8 pixels, got {image.dtype}")
        return resize_image(image, self.input_size)


def resolve_device(device: str) -> str:
    """``device`` if usable here; "cuda" without a GPU falls back to "cpu" with a warning."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        log.warning("device %r asked for, but no CUDA device is available: running on the CPU",
                    device)
        return "cpu"
    torch.device(device)  # raises on a malformed device string
    return device


def autocast(device: str) -> contextlib.AbstractContextManager:
    """fp16 autocast on a CUDA device (every backend's networks run so on a GPU);
    nothing elsewhere."""
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` at ``size`` = (height, width): area averaging when shrinking (no
    aliasing), bilinear when enlarging."""
    if image.shape[:2] == tuple(size):
        return image
    shrink = image.shape[0] * image.shape[1] > size[0] * size[1]
    return cv2.resize(image, (size[1], size[0]),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
