"""EoMT, EoMT-DINOv3 and VidEoMT of Hugging Face ``transformers`` as segmenters.

EoMT (Kerssies et al., CVPR 2025, "Your ViT is Secretly an Image Segmentation Model")
is a plain ViT (DINOv2 or DINOv3) whose last ``num_blocks`` blocks also carry the
object queries: there is no pixel decoder, and its heads give the mask-transformer
outputs the one mask-wise merge takes unchanged: ``class_queries_logits`` (C + 1, the
last "no object") and ``masks_queries_logits`` (stride 4: a stride-16 patch grid
upscaled twice). The association embedding of a query is its token after the final
LayerNorm (``last_hidden_state[:, :Q]``), what the class and mask heads read: the
MinVIS choice, as for Mask2Former (:mod:`~vps_ros.model.transformers_segmenter`).

The ViT's position embeddings and the heads' reshape fix the input to
``image_size x image_size``; images are letterboxed into it (padded with black
pixels at the right and bottom, as EoMT's image processor pads before it normalises).

VidEoMT (``VideomtForUniversalSegmentation``) is EoMT whose queries of frame t are
``query_updater(q_{t-1}) + query`` (``q_{t-1}``: the previous frame's query tokens out
of the last block, before the final LayerNorm). The library runs a whole clip in one
call; :class:`VideomtSegmenter` runs the same arithmetic one frame per call and keeps
``q_{t-1}`` between calls, one per batch row (one per camera stream of the node's
batch), so a frame costs one frame.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Sequence

import numpy as np
import torch

from ..types import ClassTable, FrameSegments
from .config import PostprocessConfig
from .mask_segmenter import MaskSegmenter, resolve_device

log = logging.getLogger(__name__)

#: Autocast dtypes of the ``precision`` load option (``auto``: fp16 on CUDA, fp32 on
#: the CPU, as every backend runs).
PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16}


def precision_context(device: str, precision: str) -> contextlib.AbstractContextManager:
    """The autocast the ``precision`` option asks for on ``device``."""
    if precision == "auto":
        precision = "fp16" if device.startswith("cuda") else "fp32"
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.split(":")[0], dtype=PRECISIONS[precision])


class EomtSegmenter(MaskSegmenter):
    """A ``transformers`` EoMT or EoMT-DINOv3 (see the module docstring).

    ``label_index[j]`` is the model's label index of class ``j`` of ``classes`` (-1:
    the model never predicts it); ``preprocessing`` has ``rescale``, ``mean``, ``std``.
    """

    family = "transformers"  # no exporter for these networks: they run on torch

    def __init__(self, model: torch.nn.Module, classes: ClassTable, label_index: np.ndarray,
                 preprocessing: Any, device: str = "cpu",
                 postprocess: PostprocessConfig | None = None, resize: str = "letterbox",
                 precision: str = "auto") -> None:
        super().__init__(classes, resolve_device(device), postprocess, resize)
        self._model = model.eval().to(self.device)
        side = int(self._model.config.image_size)
        self._input_size = (side, side)
        self._queries = int(self._model.config.num_queries)
        num_labels = int(self._model.config.num_labels)
        gather = np.append(np.where(label_index >= 0, label_index, num_labels), num_labels)
        self._gather = torch.as_tensor(gather, device=self.device)
        self._absent = torch.as_tensor(np.append(label_index < 0, False), device=self.device)
        self._mean = torch.tensor(preprocessing.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(preprocessing.std, device=self.device).view(1, 3, 1, 1)
        self._rescale = preprocessing.rescale
        self._precision = precision

    @property
    def input_size(self) -> tuple[int, int]:
        return self._input_size

    def network_size(self, image_sizes):
        """The one size the ViT takes (see the module docstring)."""
        return self._input_size

    def pixels(self, batch: np.ndarray) -> torch.Tensor:
        """(B, 3, H, W) network input of a (B, H, W, 3) uint8 batch."""
        pixels = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()
        return (pixels * self._rescale - self._mean) / self._std

    def predict(self, batch: np.ndarray) -> dict[str, torch.Tensor]:
        with torch.inference_mode(), precision_context(self.device, self._precision):
            out = self._model(pixel_values=self.pixels(batch))
        return self._outputs(out.class_queries_logits, out.masks_queries_logits,
                             out.last_hidden_state)

    def _outputs(self, class_logits: torch.Tensor, mask_logits: torch.Tensor,
                 hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = class_logits.float()[..., self._gather]
        logits = logits.masked_fill(self._absent, float("-inf"))
        return {"class_logits": logits, "mask_logits": mask_logits.float(),
                "embeddings": hidden[:, :self._queries].float()}


class VideomtSegmenter(EomtSegmenter):
    """VidEoMT run online: one frame per call, the propagated queries carried to the
    next call (see the module docstring). :meth:`reset` starts a new video. Its segments
    carry their query index: the tracker follows it (docs/tracking.md)."""

    queries_follow_objects = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._propagated: torch.Tensor | None = None
        self._restarted = False
        self._start = self._model.num_hidden_layers - int(self._model.config.num_blocks)

    def reset(self) -> None:
        """Forget the carried queries: the next frame is a video's first."""
        self._propagated = None

    def segment(self, images: Sequence[np.ndarray], at_input_resolution: bool = True
                ) -> list[FrameSegments]:
        """As :meth:`MaskSegmenter.segment`; when the carried queries started afresh
        mid-video (the batch of streams changed), the segments carry no query index:
        a query no longer holds what it held in the stream's previous frame."""
        self._restarted = False
        results = super().segment(images, at_input_resolution)
        if self._restarted:
            for segments in results:
                segments.queries = None
        return results

    def predict(self, batch: np.ndarray) -> dict[str, torch.Tensor]:
        if self._propagated is not None and len(self._propagated) != len(batch):
            log.info("VidEoMT: batch of %d streams after %d: queries start afresh",
                     len(batch), len(self._propagated))
            self._propagated = None
            self._restarted = True
        model = self._model
        with torch.inference_mode(), precision_context(self.device, self._precision):
            hidden = model.embeddings(self.pixels(batch))
            for layer in model.layers[:self._start]:
                hidden = layer(hidden)
            queries = model.query.weight[None].expand(len(batch), -1, -1)
            if self._propagated is not None:
                queries = model.query_updater(self._propagated) + queries
            hidden = torch.cat((queries.to(hidden.dtype), hidden), dim=1)
            for layer in model.layers[self._start:]:
                hidden = layer(hidden)
            self._propagated = hidden[:, :self._queries]
            normed = model.layernorm(hidden)
            masks, classes = model.predict(normed)
        return self._outputs(classes, masks, normed)
