"""Our kMaX checkpoints as a segmenter backend (torch, optionally compiled)."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

from ..errors import first_line
from ..types import ClassTable
from .backbone import fuse_conv_bn
from .checkpoint import load_checkpoint
from .config import PostprocessConfig
from .mask_segmenter import MaskSegmenter, autocast, resolve_device
from .network import KMaXNet
from .options import LoadOptions

log = logging.getLogger(__name__)


class Segmenter(MaskSegmenter):
    """kMaX-style panoptic segmenter with per-segment association embeddings.

    Takes ownership of ``net``: batch norms are folded into convolutions and the weights
    are moved to ``device`` (channels_last; fp16 autocast on CUDA).

    With ``compile``, the network runs through ``torch.compile`` (inductor) with frozen
    weights: constant-folded, pre-packed convolution weights and fused element-wise
    operations: on the 2-core development CPU the network's median fell from ~60 to
    ~50 ms, and the node's latency at 10 Hz from 173 to 99 ms (docs/benchmarks.md). The
    compilation happens on the first call at each network input size (:meth:`warm_up`
    compiles :attr:`input_size`; a letterboxed camera of another aspect compiles its own
    size on its first frame), takes about a minute on a 2-core CPU the first time and is
    cached on disk for the next start. Compiled, the network sees one image at a time,
    so that the number of cameras in a batch never triggers a new compilation. If
    compiling fails (no C++ compiler, say), the segmenter logs why and runs the network
    as it is.
    """

    family = "kMaX"
    exportable = True

    def __init__(self, net: KMaXNet, classes: ClassTable, device: str = "cpu",
                 postprocess: PostprocessConfig | None = None, compile: bool = False,
                 resize: str = "letterbox") -> None:
        if len(classes) != net.num_classes:
            raise ValueError(f"class table {classes.name!r} has {len(classes)} classes, the "
                             f"network predicts {net.num_classes}")
        super().__init__(classes, resolve_device(device), postprocess, resize)
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
        """(height, width) the network was trained at (:meth:`network_size` of a batch
        keeps its width)."""
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

    def predict(self, batch: np.ndarray) -> dict[str, torch.Tensor]:
        tensor = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()
        return self.run_network(tensor.contiguous(memory_format=torch.channels_last))

    def run_network(self, tensor: torch.Tensor) -> dict:
        """The network's outputs for a (B, 3, H, W) float batch at a network size
        (:meth:`network_size`; compiled if asked for and possible)."""
        with torch.inference_mode(), autocast(self.device):
            if self._compiled is None:
                return self._net(tensor)
            try:
                outs = [self._compiled(_canonical(tensor[i:i + 1]))
                        for i in range(len(tensor))]
            except Exception as exc:  # compilation needs a C++ toolchain; the network does not
                log.warning("torch.compile of the segmenter failed, running it uncompiled: "
                            "%s", first_line(exc))
                self._compiled = None
                return self._net(tensor)
            return {key: torch.cat([out[key] for out in outs]) for key in outs[0]}


def _canonical(image: torch.Tensor) -> torch.Tensor:
    """A copy of ``image`` made here, in inference mode, with the strides of a new
    channels_last tensor. The compiled network is specialised to its input's exact
    strides and kind (inference tensor or not), and those depend on how the caller made
    the batch (a batch of one's batch stride is arbitrary): any mismatch would compile
    the network again, a stall of many seconds."""
    return torch.empty_like(image, memory_format=torch.channels_last).copy_(image)


def load(source: str, options: LoadOptions) -> MaskSegmenter:
    """The registry's loader of checkpoints (:mod:`vps_ros.model.registry`), on torch
    (the registry puts it on the backend asked for).

    The input size is a setting of the network's config, not of its weights: the
    network is convolutional up to stride-32 attention over whatever grid it gets, so
    any multiple of 32 runs (smaller is faster and coarser).
    """
    checkpoint = load_checkpoint(source, _asked_classes(options))
    net = checkpoint.net
    if options.input_size:
        net.config = dataclasses.replace(net.config, input_height=options.input_size[0],
                                         input_width=options.input_size[1])
    return Segmenter(net, checkpoint.classes, options.device,
                     options.postprocess or checkpoint.postprocess, options.compile,
                     options.resize)


def classes(source: str, options: LoadOptions) -> ClassTable:
    """The registry's class table of a checkpoint (the one it was trained for)."""
    return load_checkpoint(source, _asked_classes(options)).classes


def _asked_classes(options: LoadOptions) -> ClassTable | None:
    """The ``classes`` option's table, which a checkpoint must have been trained for."""
    return ClassTable.named(options.classes) if options.classes else None
