"""The segmenter as the rest of the package uses it: RGB images in, FrameSegments out."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ..errors import DataError
from ..types import ClassTable, FrameSegments
from .backbone import fuse_conv_bn
from .checkpoint import load_checkpoint
from .config import PostprocessConfig
from .network import KMaXNet
from .postprocess import merge_masks, resize_segments

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """``device`` if usable here; "cuda" without a GPU falls back to "cpu" with a warning."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        log.warning("device %r asked for, but no CUDA device is available: running on the CPU",
                    device)
        return "cpu"
    torch.device(device)  # raises on a malformed device string
    return device


class Segmenter:
    """kMaX-style panoptic segmenter with per-segment association embeddings.

    Takes ownership of ``net``: batch norms are folded into convolutions and the weights
    are moved to ``device`` (channels_last; fp16 autocast on CUDA).

    With ``compile``, the network runs through ``torch.compile`` (inductor) with frozen
    weights: constant-folded, pre-packed convolution weights and fused element-wise
    operations: on the 2-core development CPU the network's median fell from ~60 to
    ~50 ms, and the node's latency at 10 Hz from 173 to 99 ms (docs/benchmarks.md). The
    compilation happens on the first call (:meth:`warm_up`), takes about a minute on a
    2-core CPU the first time and is cached on disk for the next start. Compiled, the network
    sees one image at a time, so that the number of cameras in a batch never triggers a
    new compilation. If compiling fails (no C++ compiler, say), the segmenter logs why
    and runs the network as it is.
    """

    def __init__(self, net: KMaXNet, classes: ClassTable, device: str = "cpu",
                 postprocess: PostprocessConfig | None = None, compile: bool = False) -> None:
        if len(classes) != net.num_classes:
            raise ValueError(f"class table {classes.name!r} has {len(classes)} classes, the "
                             f"network predicts {net.num_classes}")
        self.device = resolve_device(device)
        self.classes = classes
        self.postprocess = postprocess or PostprocessConfig()
        self._is_thing = classes.is_thing_lut
        self._net = fuse_conv_bn(net.eval()).to(self.device, memory_format=torch.channels_last)
        self._compiled = (torch.compile(self._net, dynamic=False, options={"freezing": True})
                          if compile else None)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu",
                        classes: ClassTable | None = None, compile: bool = False
                        ) -> "Segmenter":
        """Load a checkpoint (see :mod:`vps_ros.model.checkpoint`); with ``classes``, the
        checkpoint must have been trained for exactly that class table."""
        checkpoint = load_checkpoint(path, classes)
        return cls(checkpoint.net, checkpoint.classes, device, checkpoint.postprocess, compile)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) every image is resized to."""
        return self._net.config.input_size

    @property
    def net(self) -> KMaXNet:
        """The inference network (batch norms folded, on :attr:`device`)."""
        return self._net

    @property
    def embed_dim(self) -> int:
        return self._net.config.embed_dim

    @property
    def compiled(self) -> bool:
        """Whether the network runs compiled (False after a failed compilation)."""
        return self._compiled is not None

    def warm_up(self) -> None:
        """One call on a blank image: a network's first call is several times slower
        (allocations, kernel selection, and with ``compile`` the compilation); pay it
        here rather than on the first camera frame."""
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
        tensor = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()
        tensor = tensor.contiguous(memory_format=torch.channels_last)
        out = self.run_network(tensor)
        config = self.postprocess
        results = []
        for i, image in enumerate(images):
            segments = merge_masks(out["class_logits"][i], out["mask_logits"][i],
                                   out["embeddings"][i], self._is_thing, self.input_size, config)
            if at_input_resolution:
                segments = resize_segments(segments, image.shape[:2], self._is_thing)
            results.append(segments)
        return results

    def run_network(self, tensor: torch.Tensor) -> dict:
        """The network's outputs for a (B, 3, H, W) float batch at :attr:`input_size`
        (compiled if asked for and possible)."""
        with torch.inference_mode(), self._autocast():
            if self._compiled is None:
                return self._net(tensor)
            try:
                outs = [self._compiled(_canonical(tensor[i:i + 1]))
                        for i in range(len(tensor))]
            except Exception as exc:  # compilation needs a C++ toolchain; the network does not
                log.warning("torch.compile of the segmenter failed, running it uncompiled: "
                            "%s: %s", type(exc).__name__, (str(exc).splitlines() or [""])[0])
                self._compiled = None
                return self._net(tensor)
            return {key: torch.cat([out[key] for out in outs]) for key in outs[0]}

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

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


def _canonical(image: torch.Tensor) -> torch.Tensor:
    """A copy of ``image`` made here, in inference mode, with the strides of a new
    channels_last tensor. The compiled network is specialised to its input's exact
    strides and kind (inference tensor or not), and those depend on how the caller made
    the batch (a batch of one's batch stride is arbitrary): any mismatch would compile
    the network again, a stall of many seconds."""
    return torch.empty_like(image, memory_format=torch.channels_last).copy_(image)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` at ``size`` = (height, width): area averaging when shrinking (no
    aliasing), bilinear when enlarging."""
    if image.shape[:2] == tuple(size):
        return image
    shrink = image.shape[0] * image.shape[1] > size[0] * size[1]
    return cv2.resize(image, (size[1], size[0]),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
