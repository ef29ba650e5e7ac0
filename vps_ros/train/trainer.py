"""The training loop: curriculum stages, AdamW with warm-up and polynomial decay,
periodic validation PQ, resumable checkpoints, an exported model at the end.

Batches are streamed (:mod:`.stream`): every random choice of step ``s`` (pairs,
augmentation) is a function of ``(seed, s, slot)``, so a resumed run draws the same
batches as an uninterrupted one, with any number of processes. Under torchrun every
rank trains on its share of each step's global batch (DistributedDataParallel through
:mod:`.distributed`); rank 0 alone validates, logs and writes checkpoints, and every
rank resumes from them.
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
from itertools import islice
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm import tqdm

from ..config import to_mapping
from ..data.frames import VideoDataset
from ..errors import CheckpointError, ConfigError, DataError, VpsRosError
from ..model.checkpoint import load_checkpoint, save_checkpoint
from ..model.hf_backbone import resolve_backbone
from ..model.network import KMaXNet
from ..model.segmenter import Segmenter
from .batch import Batch, collate
from .config import StageConfig, TrainConfig, class_weight_vector
from .distributed import Distributed
from .events import EventLog
from .frames import ConcatFrames, TrainFrames, open_frames, train_frames
from .losses import Criterion
from .sampling import ClassSampler
from .stream import PairDataset, Shard, make_loader, next_batch
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
                 val_data: VideoDataset | None = None,
                 dist: Distributed | None = None) -> None:
        """Datasets come from ``config.data`` unless given; ``dist`` places this process
        in a torchrun job (default: a one-process run on ``config.device``)."""
        self.config = config
        self.config_path = config_path
        self.out_dir = Path(config.out_dir)
        self.dist = dist or Distributed.from_environment(config.device)
        self.device = self.dist.device
        if config.threads:
            torch.set_num_threads(config.threads)
        self.shard = Shard(self.dist.rank, self.dist.world_size, config.optim.accumulate)
        self.shard.check(config)
        train = train_data if train_data is not None else open_frames(config.data.train)
        self.classes = train.classes
        self.label_divisor = train.label_divisor
        self.frames = self._training_frames(train)
        self.sampler = ClassSampler(config.sampling, [c.name for c in self.classes])
        cumulative = (self.sampler.cumulative_weights(self.frames)
                      if self.sampler.active else None)
        self.pairs = PairDataset(self.frames, config, self.sampler if self.sampler.active
                                 else None, cumulative)
        self.val_data = val_data if val_data is not None else open_frames(config.data.val)
        if self.val_data.classes != self.classes:
            raise DataError(f"validation data has class table {self.val_data.classes.name!r}, "
                            f"training data {self.classes.name!r}")
        self.val_frames = 0
        with self.dist.main_first():
            self.model_config, pretrained = resolve_backbone(config.model)
        torch.manual_seed(config.seed)
        self.net = KMaXNet(self.model_config, len(self.classes))
        if pretrained is not None:
            self.net.backbone.body.load_state_dict(pretrained)
        # channels_last like the batches, so DDP's gradient buckets match the gradients
        self.net.to(self.device, memory_format=torch.channels_last)
        self.model = self.dist.wrap(self.net, config.distributed.sync_batchnorm)
        if config.init:
            self._load_init(Path(config.init))
        self.criterion = Criterion(config.loss, len(self.classes),
                                   class_weight_vector(config.loss.class_weights,
                                                       [c.name for c in self.classes],
                                                       "loss.class_weights"))
        self.optimizer = torch.optim.AdamW(
            _param_groups(self.net, config.optim.weight_decay, config.optim.backbone_lr_ratio),
            lr=config.optim.lr)
        self.amp_dtype = getattr(torch, config.amp_dtype)
        self.amp = config.mixed_precision and (self.device.startswith("cuda")
                                               or self.amp_dtype == torch.bfloat16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and
                                           self.amp_dtype == torch.float16)
        self.events = EventLog(self.out_dir / "tensorboard"
                               if self.dist.is_main and config.tensorboard else None)
        self.step = 0
        self.best_pq = -1.0
        self.history: list[dict] = []
        self.seconds = 0.0

    def _training_frames(self, train: VideoDataset) -> TrainFrames:
        """data.train and data.extra as one source of frames (one class table)."""
        data = self.config.data
        size = self.config.model.input_size
        first = train_frames(train, size, data.train.max_frames)
        if not data.extra:
            return first
        sources, gaps = [first], [data.train.max_pair_gap]
        for k, extra in enumerate(data.extra):
            dataset = open_frames(extra)
            if dataset.classes != train.classes:
                raise DataError(f"data.extra[{k}] has class table {dataset.classes.name!r}, "
                                f"data.train {train.classes.name!r}")
            sources.append(train_frames(dataset, size, extra.max_frames))
            gaps.append(extra.max_pair_gap)
        return ConcatFrames(sources, gaps)

    def _load_init(self, path: Path) -> None:
        """The weights of checkpoint ``path`` (config.init), checked like a resume's."""
        checkpoint = load_checkpoint(path, self.classes)
        if checkpoint.net.config != self.model_config:
            raise CheckpointError(f"{path} (init): written for another model config than "
                                  f"{self.config_path or 'this run'}'s")
        self.net.load_state_dict(checkpoint.net.state_dict())
        log.info("initialised from %s", path)

    # ---------------------------------------------------------------- resume

    def resume(self) -> None:
        """Continue from ``out_dir/last.pt`` (same architecture and classes)."""
        path = self.out_dir / LAST
        checkpoint = load_checkpoint(path, self.classes)
        if checkpoint.net.config != self.model_config:
            raise CheckpointError(f"{path}: written for another model config than "
                                  f"{self.config_path or 'this run'}'s")
        self.net.load_state_dict(checkpoint.net.state_dict())
        self.optimizer.load_state_dict(checkpoint.extra["optimizer"])
        if "scaler" in checkpoint.extra:
            self.scaler.load_state_dict(checkpoint.extra["scaler"])
        progress = checkpoint.extra["progress"]
        self.step, self.best_pq = int(progress["step"]), float(progress["best_pq"])
        self.seconds = float(progress["seconds"])
        self.history = list(progress["history"])
        log.info("resumed %s at step %d", path, self.step)

    # ---------------------------------------------------------------- loop

    def run(self, stop_at: int | None = None) -> Path:
        """Train to the end of the curriculum and return the final checkpoint's path; with
        ``stop_at``, stop after that step instead and return the resume checkpoint's.

        A VpsRosError raised while training (a bad frame read by this rank) names the
        rank and step."""
        return run_schedule(self, stop_at, "training", LAST, FINAL)

    def error_step(self) -> int:
        """The step an error raised now belongs to."""
        return self._in_step

    def _loop(self, end: int) -> None:
        self._in_step = self.step + 1
        config = self.config
        total = config.total_steps
        if self.step >= end:
            return
        loader = make_loader(self.pairs, self.shard, self.step, end,
                             self.device.startswith("cuda") and config.loader.pin_memory)
        batches: Iterator[Batch] = iter(loader)
        bar = tqdm(total=total, initial=self.step, desc="train", unit="step",
                   dynamic_ncols=True, disable=not self.dist.is_main)
        with bar:
            while self.step < end:
                self._in_step = self.step + 1   # validation and saving belong to it too
                start = time.perf_counter()
                micro = [next_batch(batches).to(self.device)
                         for _ in range(self.shard.accumulate)]
                waited = time.perf_counter() - start
                result = self.optimize(micro)
                result.seconds = time.perf_counter() - start
                self.step += 1
                self.seconds += result.seconds
                self._record(result, waited)
                bar.update(1)
                bar.set_postfix(loss=f"{result.loss:.3f}", pq=f"{max(self.best_pq, 0):.3f}")
                if self.dist.is_main and (self.step % config.val_every == 0 or self.step == total):
                    self.validate()
                if self.dist.is_main and (self.step % config.checkpoint_every == 0
                                          or self.step in (end, total)):
                    self.save(self.out_dir / LAST, with_optimizer=True)

    def _record(self, result: StepResult, waited: float) -> None:
        """History entry (every step) and TensorBoard scalars (every ``log_every``) on rank 0;
        losses are means over ranks."""
        names = sorted(result.parts)
        values = self.dist.mean([result.loss] + [result.parts[n] for n in names])
        if not self.dist.is_main:
            return
        frames = 2 * self.config.stage_of(self.step - 1).pairs
        lr = self.learning_rate(self.step - 1)
        entry = {"step": self.step, "loss": round(values[0], 5),
                 "seconds": round(result.seconds, 4), "lr": lr,
                 "frames_per_s": round(frames / result.seconds, 3),
                 "data_wait": round(waited / result.seconds, 4),
                 **{n: round(v, 5) for n, v in zip(names, values[1:])}}
        self.history.append(entry)
        if self.step % self.config.log_every == 0:
            self.events.scalars(self.step, {
                "loss/total": values[0], **{f"loss/{n}": v for n, v in zip(names, values[1:])},
                "optim/lr": lr, "throughput/frames_per_s": entry["frames_per_s"],
                "throughput/data_wait_share": entry["data_wait"]})

    def stage_of(self, step: int) -> StageConfig:
        return self.config.stage_of(step)

    def sample_batch(self, stage: StageConfig) -> Batch:
        """This rank's batch of the current step, drawn in this process (all its
        micro-batches together), at ``stage``'s crop, scale and number of pairs."""
        slots = [slot for micro in self.shard.micro_batches(stage.pairs) for slot in micro]
        return collate([self.pairs.sample(self.step, slot, stage) for slot in slots]
                       ).to(self.device)

    def optimize(self, batches: Batch | list[Batch]) -> StepResult:
        """One optimizer step on the micro-batches of this rank at the current step's
        learning rate; each micro-batch's loss counts 1 / (number of micro-batches), and
        DistributedDataParallel averages the gradients over ranks."""
        config = self.config
        batches = [batches] if isinstance(batches, Batch) else batches
        self._set_lr()
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, parts_sum = 0.0, {}
        for k, batch in enumerate(batches):
            with self.dist.no_sync(self.model, k < len(batches) - 1):
                with self._autocast():
                    outputs = self.model(batch.images, aux=True)
                loss, parts = self.criterion(outputs, batch.targets)
                self.scaler.scale(loss / len(batches)).backward()
            loss_sum += float(loss.detach()) / len(batches)
            for name, value in parts.items():
                parts_sum[name] = parts_sum.get(name, 0.0) + value / len(batches)
        if config.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), config.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return StepResult(loss_sum, parts_sum, 0.0)

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
            group["lr"] = self.learning_rate(self.step) * group["lr_ratio"]

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast(self.device.split(":")[0], dtype=self.amp_dtype)
        return contextlib.nullcontext()

    # ---------------------------------------------------------------- outputs

    def segmenter(self) -> Segmenter:
        """A segmenter of a copy of the current weights (the copy gets fused for speed)."""
        return Segmenter(copy.deepcopy(self.net), self.classes, self.device,
                         self.config.postprocess)

    def validate(self) -> dict:
        """PQ on the validation frames, streamed from the dataset (rank 0)."""
        frames = (f for f in self.val_data if f.panoptic is not None)
        result = panoptic_quality_of(self.segmenter(), islice(
            frames, self.config.data.val.max_frames or None), self.label_divisor)
        self.val_frames = result["num_images"]
        if not self.val_frames:
            raise DataError("val frames: the dataset has no annotated frames")
        summary = {k: round(float(result[k]), 5) for k in ("PQ", "PQ_things", "PQ_stuff",
                                                           "SQ", "RQ")}
        self.history.append({"step": self.step, "val": summary})
        self.events.scalars(self.step, {f"val/{k}": v for k, v in summary.items()})
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
            if self.scaler.is_enabled():
                extra["scaler"] = self.scaler.state_dict()
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
                "processes": self.dist.world_size,
                "threads": torch.get_num_threads(),
                "torch": str(torch.__version__), "train_frames": len(self.frames),
                "val_frames": self.val_frames, "val": last_val,
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


def _param_groups(net: torch.nn.Module, weight_decay: float, backbone_lr_ratio: float
                  ) -> list[dict]:
    """No weight decay on norms, biases and the query embeddings; the backbone's learning
    rate scaled by ``backbone_lr_ratio`` (``lr_ratio`` of each group)."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in net.named_parameters():
        decay = not (param.ndim <= 1 or name.startswith("queries"))
        groups.setdefault((name.startswith("backbone."), decay), []).append(param)
    return [{"params": params, "weight_decay": weight_decay if decay else 0.0,
             "lr_ratio": backbone_lr_ratio if backbone else 1.0}
            for (backbone, decay), params in sorted(groups.items())]


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def run_schedule(runner: Any, stop_at: int | None, noun: str, last: str, final: str) -> Path:
    """The run shared by :class:`Trainer` and the fine-tuner (``train/finetune.py``): up to
    ``stop_at`` or the schedule's end, errors prefixed with rank and step, then the
    resume path ``last`` (stopped early) or ``final``, saved and exported by rank 0."""
    total = runner.config.total_steps
    if stop_at is not None and stop_at <= runner.step:
        raise ConfigError(f"stop at step {stop_at}: {noun} is at step {runner.step} "
                          "already; give a later step")
    end = total if stop_at is None else min(stop_at, total)
    try:
        runner._loop(end)
    except VpsRosError as exc:
        raise type(exc)(f"rank {runner.dist.rank}, step {runner.error_step()}: {exc}") from None
    finally:
        runner.events.close()
    runner.dist.barrier()
    if runner.step < total:
        return runner.out_dir / last
    done = runner.out_dir / final
    if runner.dist.is_main:
        runner.save(done)
        if runner.config.export:
            runner.save(Path(runner.config.export))
    return done
