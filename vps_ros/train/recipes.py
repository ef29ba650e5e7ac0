"""Which training a recipe asks for: kMaX from scratch or a checkpoint (``TrainConfig``),
or a ``transformers`` model fine-tuned with its own loss (``FinetuneConfig``, a recipe
with ``pretrained``). ``vps-ros train`` and its torchrun ranks load every recipe here
and get the trainer for it; neither asks which kind it holds."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import load_yaml
from .config import TrainConfig, load_train_config
from .distributed import Distributed
from .finetune import FinetuneConfig, FinetuneTrainer, check_recipe
from .trainer import Trainer

#: Trainer of each recipe kind.
TRAINERS: dict[type, type] = {TrainConfig: Trainer, FinetuneConfig: FinetuneTrainer}
#: What ``export`` names: a checkpoint file (kMaX) or a model folder (fine-tuning).
EXPORTS: dict[type, str] = {TrainConfig: "files", FinetuneConfig: "folders"}


def load_recipe(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """The recipe in ``path``, validated: a FinetuneConfig when it names ``pretrained``."""
    mapping = {**load_yaml(path), **(overrides or {})}
    if "pretrained" not in mapping:
        return load_train_config(path, overrides)
    config = load_train_config(path, overrides, FinetuneConfig)
    check_recipe(config, mapping, str(path))
    return config


def make_trainer(config: TrainConfig, config_path: str = "",
                 dist: Distributed | None = None, **data: Any):
    """The trainer of ``config``'s kind (``data``: train_data/val_data for tests)."""
    return TRAINERS[type(config)](config, config_path, dist=dist, **data)


def output_paths(config: TrainConfig) -> dict[str, dict[str, str | None]]:
    """The outputs of a run of ``config``, as :func:`~vps_ros.commands.paths.check_outputs`
    takes them (``export`` only when set)."""
    outputs: dict[str, dict[str, str | None]] = {"files": {},
                                                 "folders": {"out_dir": config.out_dir}}
    outputs[EXPORTS[type(config)]]["export"] = config.export or None
    return outputs
