"""Batches: augmented frame pairs as one image tensor plus per-frame mask targets.

Targets live at the stride of the final masks (2): each ground-truth segment becomes a
soft mask holding the share of every 2x2 cell it covers, so a segment a few pixels
wide still gives the loss its sub-cell extent.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .augment import augment
from .config import AugmentConfig, StageConfig
from .frames import TrainFrame

MASK_STRIDE = 2
# Segments smaller than this (pixels, after augmentation) are ignored rather than
# asked for: a sliver at a crop border is no object to find.
MIN_SEGMENT_AREA = 16


@dataclass
class Target:
    """Ground truth of one frame at stride 2 (or coarser, see :meth:`pooled`)."""

    masks: torch.Tensor    # (G, h, w) float32, share of each cell covered by the segment
    classes: torch.Tensor  # (G,) int64
    tracks: torch.Tensor   # (G,) int64, NO_TRACK for stuff
    valid: torch.Tensor    # (h, w) bool, cells that are mostly not void
    labels: torch.Tensor   # (h, w) int64, the segment covering most of a cell, -1 if invalid

    def pooled(self, size: tuple[int, int]) -> "Target":
        """The same ground truth on a coarser grid of ``size`` cells (the k-means rounds
        at strides 8, 16, 32 and the semantic head at stride 4 are supervised at their
        own resolution)."""
        if tuple(size) == tuple(self.valid.shape):
            return self
        factor = self.valid.shape[0] // size[0]
        masks = F.avg_pool2d(self.masks[None], factor)[0] if len(self.masks) else \
            self.masks.new_zeros((0, *size))
        covered = masks.sum(0)
        valid = covered > 0.5
        labels = torch.where(valid, masks.argmax(0) if len(masks) else -1, -1)
        return Target(masks, self.classes, self.tracks, valid, labels)


@dataclass
class Batch:
    images: torch.Tensor   # (2P, 3, H, W) float32 RGB 0..255; frames 2i, 2i+1 are a pair
    targets: list[Target]

    def __len__(self) -> int:
        return len(self.targets)

    def pin_memory(self) -> "Batch":
        """Page-locked copies (the DataLoader's ``pin_memory`` calls this)."""
        return Batch(self.images.pin_memory(),
                     [Target(*(getattr(t, f).pin_memory() for f in Target.__dataclass_fields__))
                      for t in self.targets])

    def to(self, device: str) -> "Batch":
        return Batch(self.images.to(device, non_blocking=True),
                     [Target(*(getattr(t, f).to(device) for f in Target.__dataclass_fields__))
                      for t in self.targets])


@dataclass
class PairSample:
    """One augmented pair: what a data-loader worker hands back for one batch slot."""

    images: np.ndarray     # (2, H, W, 3) uint8
    targets: list[Target]  # two


def make_pair(pair: tuple[TrainFrame, TrainFrame], stage: StageConfig, config: AugmentConfig,
              rng: np.random.Generator,
              centers: tuple[tuple[float, float] | None, ...] = (None, None),
              scale: tuple[float, float] | None = None) -> PairSample:
    """The augmented pair; ``centers`` place each frame's crop on a point (focus crops),
    ``scale`` replaces the stage's rescale range."""
    crop = (stage.crop[0], stage.crop[1])
    scale = scale or (stage.scale[0], stage.scale[1])
    images, targets = [], []
    for frame, center in zip(pair, centers):
        image, ids = augment(frame, crop, scale, config, rng, center)
        images.append(image)
        targets.append(make_target(ids, frame))
    return PairSample(np.stack(images), targets)


def collate(samples: list[PairSample]) -> Batch:
    """One batch of pairs (frames 2i and 2i + 1 are pair i)."""
    images = np.concatenate([s.images for s in samples])
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return Batch(tensor.contiguous(memory_format=torch.channels_last),
                 [t for s in samples for t in s.targets])


def make_batch(pairs: list[tuple[TrainFrame, TrainFrame]], stage: StageConfig,
               config: AugmentConfig, rng: np.random.Generator) -> Batch:
    return collate([make_pair(pair, stage, config, rng) for pair in pairs])


def make_target(ids: np.ndarray, frame: TrainFrame) -> Target:
    """Soft stride-2 masks of the segments present in ``ids`` (a crop of ``frame``)."""
    h, w = ids.shape
    hs, ws = h // MASK_STRIDE, w // MASK_STRIDE
    g = len(frame.classes)
    slots = _cells(h, w) * (g + 1) + ids.astype(np.int64) + 1
    counts = np.bincount(slots.ravel(), minlength=hs * ws * (g + 1)).reshape(hs * ws, g + 1)
    keep = np.flatnonzero(counts[:, 1:].sum(axis=0) >= MIN_SEGMENT_AREA)
    share = counts.astype(np.float32) / MASK_STRIDE ** 2
    masks = share[:, 1 + keep]
    valid = masks.sum(axis=1) > 0.5
    labels = np.where(valid, masks.argmax(axis=1) if len(keep) else -1, -1)
    return Target(torch.from_numpy(np.ascontiguousarray(masks.T).reshape(len(keep), hs, ws)),
                  torch.from_numpy(frame.classes[keep]), torch.from_numpy(frame.tracks[keep]),
                  torch.from_numpy(valid.reshape(hs, ws)),
                  torch.from_numpy(labels.reshape(hs, ws).astype(np.int64)))


@lru_cache(maxsize=8)
def _cells(h: int, w: int) -> np.ndarray:
    """(h, w) index of the stride-2 cell of every pixel."""
    ws = w // MASK_STRIDE
    return ((np.arange(h) // MASK_STRIDE)[:, None] * ws + (np.arange(w) // MASK_STRIDE)[None, :])
