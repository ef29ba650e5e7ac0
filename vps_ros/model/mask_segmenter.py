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

import numpy as np
import torch

from ..errors import DataError
from ..types import ClassTable, FrameSegments
from .config import PostprocessConfig
from .limits import InputLimits
from .postprocess import merge_masks
from .resizing import crop_segments, fitted_size, letterbox, scale_segments

log = logging.getLogger(__name__)


class MaskSegmenter(abc.ABC):
    """Panoptic segmenter of the mask-transformer family (queries -> class + mask).

    Subclasses implement :meth:`predict`; ``postprocess`` may be replaced between calls
    (the node's run-time parameters); ``resize`` says how camera images are fitted into
    the input (:mod:`vps_ros.model.resizing`: ``letterbox`` keeps their aspect).
    """

    backend = "torch"  # what runs the network (see vps_ros.model.engines)
    fallback = ""      # why the backend asked for is not the one running ("" if it is)
    family = "vps_ros"  # the kind of network, as the backend fallback names it
    exportable = False  # vps_ros.model.export can write its network for the engines
    limits = InputLimits()  # frame and input-size bounds (the registry sets the load option's)
    # A query follows its object from frame to frame (VidEoMT's propagated queries): the
    # segments then carry their query index (FrameSegments.queries) for the tracker.
    queries_follow_objects = False

    def __init__(self, classes: ClassTable, device: str,
                 postprocess: PostprocessConfig | None = None, resize: str = "letterbox"
                 ) -> None:
        self.classes = classes
        self.device = device
        self.postprocess = postprocess or PostprocessConfig()
        self._is_thing = classes.is_thing_lut
        self.resize = resize

    @property
    @abc.abstractmethod
    def input_size(self) -> tuple[int, int]:
        """(height, width) every image is resized to before the network."""

    def network_size(self, image_sizes: Sequence[tuple[int, int]]) -> tuple[int, int]:
        """(height, width) of the network input for a batch of images of these sizes:
        :attr:`input_size` when stretching; when letterboxing, :attr:`input_size`'s
        width and the height the tallest image needs at that width, a multiple of 32.

        At the width the model was trained at, objects keep the scale they had in
        training (a 1920x1080 camera: 512x288 input, PQ 70.2 on synthetic frames,
        against 69.5 squashed into 512x256 and 66.8 shrunk to fit it: docs/cameras.md).
        The height is capped by :attr:`limits` (aspect and pixels:
        :meth:`~vps_ros.model.limits.InputLimits.max_network_height`); a taller image
        is scaled down to fit.
        A backend whose network takes one input size only returns :attr:`input_size`;
        the images are then scaled to fit it.
        """
        if self.resize == "stretch":
            return self.input_size
        width = self.input_size[1]
        needed = max(32, *(-(-round(h * width / w) // 32) * 32 for h, w in image_sizes))
        return min(needed, self.limits.max_network_height(self.input_size)), width

    @abc.abstractmethod
    def predict(self, batch: np.ndarray) -> dict[str, torch.Tensor]:
        """Per-query predictions for a (B, H, W, 3) RGB uint8 batch at
        :meth:`network_size`:
        ``class_logits`` (B, N, C + 1; the last is "no object"), ``mask_logits``
        (B, N, h, w on the network's mask grid) and ``embeddings`` (B, N, E), the
        association features of the queries."""

    def reset(self) -> None:
        """Start a new video: forget what carries from one frame to the next (nothing,
        for an image model; VidEoMT's propagated queries)."""

    def warm_up(self) -> None:
        """One call on a blank image at :attr:`input_size`: a network's first call is
        several times slower (allocations, kernel selection, compilation); pay it here
        rather than on the first camera frame. A camera whose aspect needs another
        network size (letterbox) pays its own first call (with an engine or
        ``compile``: an export or a compilation) on its first frame; set
        input_height/input_width to that size to pay it here (docs/cameras.md)."""
        self.segment([np.zeros(self.input_size + (3,), np.uint8)])

    def segment(self, images: Sequence[np.ndarray], at_input_resolution: bool = True
                ) -> list[FrameSegments]:
        """Segments of a batch of RGB uint8 images of any sizes.

        Each image is fitted into :attr:`input_size` (:attr:`resize`); with
        ``at_input_resolution`` the segment maps and boxes are mapped back to each
        image's own size, otherwise they stay at the size the image had in the
        network's input (:func:`~vps_ros.model.resizing.fitted_size`).
        """
        if len(images) == 0:
            return []
        sizes = [self._check(image, i) for i, image in enumerate(images)]
        canvas = self.network_size(sizes)
        fitted = [fitted_size(size, canvas, self.resize) for size in sizes]
        out = self.predict(np.stack([letterbox(image, size, canvas)
                                     for image, size in zip(images, fitted)]))
        results = []
        for i, image in enumerate(images):
            segments = merge_masks(out["class_logits"][i], out["mask_logits"][i],
                                   out["embeddings"][i], self._is_thing, canvas,
                                   self.postprocess, self.queries_follow_objects)
            segments = crop_segments(segments, fitted[i], self._is_thing)
            if at_input_resolution:
                segments = scale_segments(segments, image.shape[:2])[0]
            results.append(segments)
        return results

    def _check(self, image: np.ndarray, index: int) -> tuple[int, int]:
        """The (height, width) of a valid RGB uint8 image within :attr:`limits`;
        DataError (:class:`~vps_ros.model.limits.FrameTooLarge`) otherwise."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            shape = getattr(image, "shape", None)
            raise DataError(f"image {index} of the batch: expected an (H, W, 3) RGB array, "
                            f"got shape {shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise DataError(f"image {index} of the batch is empty (shape {image.shape})")
        if image.dtype != np.uint8:
            raise DataError(f"image {index} of the batch: expected uint8 pixels, got {image.dtype}")
        self.limits.check_image(image.shape[:2], f"image {index} of the batch")
        return image.shape[0], image.shape[1]


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

