"""Shared pieces of the pipeline and node tests: a small real model (randomly
initialised, saved with the model package's own checkpoint writer) and short
synthetic sequences."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from testkit.scenes import CLASSES, SMALL
from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.model import PostprocessConfig
from vps_ros.model.checkpoint import save_checkpoint
from vps_ros.model.network import KMaXNet

# An untrained network is unsure of everything: keep every query so that frames still
# have several segments (things of a few classes, sometimes stuff).
LOOSE = PostprocessConfig(class_threshold=0.0, overlap_threshold=0.0, min_area_thing=0,
                          min_area_stuff=0)
LOOSE_PARAMS = {"postprocess.class_threshold": 0.0, "postprocess.overlap_threshold": 0.0,
                "postprocess.min_area_thing": 0, "postprocess.min_area_stuff": 0}
HEIGHT, WIDTH = SMALL.input_height, SMALL.input_width


def write_small_checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    save_checkpoint(path, KMaXNet(SMALL, len(CLASSES)), CLASSES)
    return path


def synthetic_frames(num_frames: int, sequence: int = 0, height: int = HEIGHT,
                     width: int = WIDTH) -> list:
    """Frames of one synthetic validation sequence (VideoFrame records)."""
    dataset = SyntheticDataset("val", sequence + 1, num_frames, height, width)
    return [f for f in dataset if f.sequence == dataset.sequence_ids[sequence]]


def save_frames(path: Path, frames: list) -> Path:
    np.savez(path, **{f"image_{i}": f.image for i, f in enumerate(frames)})
    return path
