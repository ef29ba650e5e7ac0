"""A network exported by :mod:`vps_ros.model.export`, run by an inference engine."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..config import PostprocessConfig
from ..export import OUTPUTS, ExportInfo
from ..mask_segmenter import MaskSegmenter

# One RGB uint8 image (1, H, W, 3) in, the OUTPUTS as numpy arrays out.
Session = Callable[[np.ndarray], tuple[np.ndarray, ...]]


class ExportedSegmenter(MaskSegmenter):
    """The segmenter of an exported file: its class table and input size come from the
    file's own metadata, its thresholds too unless ``postprocess`` is given;
    ``session`` runs the graph (one image per call, the shape it was exported with)."""

    def __init__(self, info: ExportInfo, session: Session, backend: str, device: str,
                 postprocess: PostprocessConfig | None = None, resize: str = "letterbox"
                 ) -> None:
        super().__init__(info.classes, device, postprocess or info.postprocess, resize)
        self.info = info
        self.backend = backend
        self._session = session

    @property
    def input_size(self) -> tuple[int, int]:
        return self.info.input_size

    def network_size(self, image_sizes) -> tuple[int, int]:
        """The exported shape, whatever the cameras: frames are fitted into it."""
        return self.input_size

    def predict(self, batch: np.ndarray) -> dict[str, torch.Tensor]:
        outs = [self._session(np.ascontiguousarray(batch[i:i + 1])) for i in range(len(batch))]
        return {name: torch.from_numpy(np.concatenate([out[k] for out in outs]))
                for k, name in enumerate(OUTPUTS)}
