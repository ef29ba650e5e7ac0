"""Small training runs for the streaming, backbone and torchrun tests: a KITTI-STEP
folder written by ``vps-ros synth`` (the real reader's path) and a tiny config."""
from __future__ import annotations

from pathlib import Path

import yaml

from testkit.scenes import SMALL
from vps_ros.cli import main
from vps_ros.config import to_mapping

STILL = {"flip": 0.0, "brightness": 0.0, "contrast": 0.0, "saturation": 0.0,
         "max_pair_gap": 2}


def write_kitti(root: Path, sequences: int = 2, frames: int = 4) -> Path:
    """A KITTI-STEP train split of synthetic 64x128 frames."""
    assert main(["synth", str(root), "--format", "kitti-step", "--split", "train",
                 "--sequences", str(sequences), "--frames", str(frames),
                 "--height", "64", "--width", "128"]) == 0
    return root


def tiny_config(kitti: Path, out_dir: Path, steps: int = 4, pairs: int = 2, **overrides
                ) -> dict:
    """A training config mapping over ``kitti`` with the tests' small network."""
    data = {"type": "kitti-step", "path": str(kitti), "split": "train"}
    return {"seed": 0, "threads": 1, "out_dir": str(out_dir), "val_every": 1000,
            "checkpoint_every": 1000, "tensorboard": False,
            "data": {"train": data, "val": {**data, "max_frames": 2}},
            "curriculum": [{"steps": steps, "crop": [64, 128], "pairs": pairs,
                            "scale": [0.8, 1.2]}],
            "model": to_mapping(SMALL), "optim": {"warmup_steps": 2},
            "loader": {"workers": 0}, **overrides}


def write_yaml(path: Path, mapping: dict) -> Path:
    path.write_text(yaml.safe_dump(mapping))
    return path
