"""The training loop: curriculum stages, AdamW with warm-up and polynomial decay,
periodic validation PQ, resumable checkpoints, an exported model at the end.

Every random choice of step ``s`` (pairs, augmentation) comes from a generator seeded
with ``(seed, s)``, so a resumed run draws the same batches as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..config import to_mapping
from ..data.frames import VideoDataset
from ..errors import CheckpointError, DataError
from ..model.checkpoint import load_checkpoint, save_checkpoint
from ..model.network import KMaXNet
from ..model.mask_segmenter import resolve_device
from ..model.segmenter import Segmenter
from .batch import Batch, make_batch
from .config import StageConfig, TrainConfig
from .frames import FrameBank, annotated, open_frames
from .losses import Criterion
from .validate import panoptic_quality_of

log = logging.getLogger(__name__)

LAST = "last.pt"     # resume checkpoint: weights + optimizer + progress
BEST = "best.pt"     # best validation PQ so far
FINAL = "final.pt"   # weights at the end of training


@dataclass
class StepResult:
    loss: float
    parts: dict[str, float]
    seconds: float


class Trainer:
    def __init__(self, config: TrainConfig, config_path: str = "",
                 train_data: VideoDataset | None = None,
                 val_data: VideoDataset | None = None) -> None:
        """Datasets come from ``config.data`` unless given."""
        self.config = config
        self.config_path = config_path
        self.out_dir = Path(config.out_dir)
        self.device = resolve_device(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        train = train_data if train_data is not None else open_frames(config.data.train)
        self.classes = train.classes
        self.label_divisor = train.label_divisor
        self.bank = FrameBank(annotated(train, config.data.train.max_frames, "train frames"),
                              self.classes, self.label_divisor, config.model.input_size)
        val = val_data if val_data is not None else open_frames(config.data.val)
        if val.classes != self.classes:
            raise DataError(f"validation data has class table {val.classes.name!r}, "
                                  f"training data {self.classes.name!r}")
        self.val_frames = annotated(val, config.data.val.max_frames, "val frames")
        self.net = KMaXNet(config.model, len(self.classes)).to(self.device)
        self.criterion = Criterion(config.loss, len(self.classes))
        self.optimizer = torch.optim.AdamW(_param_groups(self.net, config.optim.weight_decay),
                                           lr=config.optim.lr)
        self.amp = config.mixed_precision and self.device.startswith("cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.step = 0
        self.best_pq = -1.0
        self.history: list[dict] = []
        self.seconds = 0.0

    # ---------------------------------------------------------------- resume

    def resume(self) -> None:
        """Continue from ``out_dir/last.pt`` (same architecture and classes)."""
        path = self.out_dir / LAST
        checkpoint = load_checkpoint(path, self.classes)
        if checkpoint.net.config != self.config.model:
            raise CheckpointError(f"{path}: written for another model config than "
                                  f"{self.config_path or 'this run'}'s")
        self.net.load_state_dict(checkpoint.net.state_dict())
        self.optimizer.load_state_dict(checkpoint.extra["optimizer"])
        progress = checkpoint.extra["progress"]
        self.step, self.best_pq = int(progress["step"]), float(progress["best_pq"])
        self.seconds = float(progress["seconds"])
        self.history = list(progress["history"])
        log.info("resumed %s at step %d", path, self.step)

    # ---------------------------------------------------------------- loop

    def run(self, stop_at: int | None = None) -> Path:
        """Train to the end of the curriculum and return the final checkpoint's path; with
        ``stop_at``, stop after that step instead and return the resume checkpoint's."""
        config = self.config
        total = config.total_steps
        end = total if stop_at is None else min(stop_at, total)
        bar = tqdm(total=total, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        with bar:
            while self.step < end:
                result = self.train_step(self.stage_of(self.step))
                self.step += 1
                self.seconds += result.seconds
                bar.update(1)
                bar.set_postfix(loss=f"{result.loss:.3f}", pq=f"{max(self.best_pq, 0):.3f}")
                self.history.append({"step": self.step, "loss": round(result.loss, 5),
                                     "seconds": round(result.seconds, 4),
                                     **{k: round(v, 5) for k, v in result.parts.items()}})
                if self.step % config.val_every == 0 or self.step == total:
                    self.validate()
                if self.step % config.checkpoint_every == 0 or self.step in (end, total):
                    self.save(self.out_dir / LAST, with_optimizer=True)
        if self.step < total:
            return self.out_dir / LAST
        final = self.save(self.out_dir / FINAL)
        if config.export:
            self.save(Path(config.export))
        return final

    def stage_of(self, step: int) -> StageConfig:
        for stage in self.config.curriculum:
            if step < stage.steps:
                return stage
            step -= stage.steps
        return self.config.curriculum[-1]

    def train_step(self, stage: StageConfig) -> StepResult:
        start = time.perf_counter()
        result = self.optimize(self.sample_batch(stage))
        result.seconds = time.perf_counter() - start
        return result

    def sample_batch(self, stage: StageConfig) -> Batch:
        """The batch of the current step (a function of the seed and the step)."""
        config = self.config
        rng = np.random.default_rng([config.seed, self.step])
        pairs = self.bank.sample_pairs(stage.pairs, config.augment.max_pair_gap, rng)
        return make_batch(pairs, stage, config.augment, rng).to(self.device)

    def optimize(self, batch: Batch) -> StepResult:
        """One optimizer step on ``batch`` at the current step's learning rate."""
        config = self.config
        self._set_lr()
        self.net.train()
        with self._autocast():
            outputs = self.net(batch.images, aux=True)
        loss, parts = self.criterion(outputs, batch.targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if config.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), config.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return StepResult(float(loss.detach()), parts, 0.0)

    def learning_rate(self, step: int) -> float:
        """Linear warm-up, then polynomial decay (power 0.9) to ``final_lr_ratio``."""
        optim = self.config.optim
        if step < optim.warmup_steps:
            return optim.lr * (step + 1) / optim.warmup_steps
        span = max(1, self.config.total_steps - optim.warmup_steps)
        progress = min(1.0, (step - optim.warmup_steps) / span)
        return optim.lr * (optim.final_lr_ratio + (1 - optim.final_lr_ratio)
                           * math.pow(1 - progress, 0.9))

    def _set_lr(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    # ---------------------------------------------------------------- outputs

    def segmenter(self) -> Segmenter:
        """A segmenter of a copy of the current weights (the copy gets fused for speed)."""
        return Segmenter(copy.deepcopy(self.net), self.classes, self.device,
                         self.config.postprocess)

    def validate(self) -> dict:
        result = panoptic_quality_of(self.segmenter(), self.val_frames, self.label_divisor)
        summary = {k: round(float(result[k]), 5) for k in ("PQ", "PQ_things", "PQ_stuff",
                                                           "SQ", "RQ")}
        self.history.append({"step": self.step, "val": summary})
        tqdm.write(f"step {self.step}: val PQ {summary['PQ']:.3f} (things "
                   f"{summary['PQ_things']:.3f}, stuff {summary['PQ_stuff']:.3f})")
        if summary["PQ"] > self.best_pq:
            self.best_pq = summary["PQ"]
            self.save(self.out_dir / BEST)
        return result

    def save(self, path: Path, with_optimizer: bool = False) -> Path:
        extra = {}
        if with_optimizer:
            extra = {"optimizer": self.optimizer.state_dict(),
                     "progress": {"step": self.step, "best_pq": self.best_pq,
                                  "seconds": self.seconds, "history": self.history}}
        save_checkpoint(path, self.net, self.classes, self.config.postprocess,
                        self.metadata(), extra)
        self._write_log()
        return path

    def metadata(self) -> dict:
        """Training facts stored in every checkpoint (JSON-able)."""
        last_val = next((h["val"] for h in reversed(self.history) if "val" in h), None)
        return {"config_file": self.config_path, "config": _jsonable(to_mapping(self.config)),
                "steps": self.step, "train_seconds": round(self.seconds, 1),
                "device": self.device, "machine": machine_description(self.device),
                "threads": torch.get_num_threads(),
                "torch": str(torch.__version__), "train_frames": len(self.bank),
                "val_frames": len(self.val_frames), "val": last_val,
                "best_val_pq": self.best_pq if self.best_pq >= 0 else None}

    def _write_log(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "history.jsonl", "w") as f:
            for entry in self.history:
                f.write(json.dumps(entry) + "\n")


def machine_description(device: str) -> str:
    """CPU model and cores (and the GPU when training on one), for the model card."""
    cpu = platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    text = f"{cpu}, {os.cpu_count()} cores"
    if device.startswith("cuda"):
        text += f", {torch.cuda.get_device_name(torch.device(device))}"
    return text


def _param_groups(net: torch.nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on norms, biases and the query embeddings."""
    decay, no_decay = [], []
    for name, param in net.named_parameters():
        (no_decay if param.ndim <= 1 or name.startswith("queries") else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
