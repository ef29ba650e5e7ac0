"""Fine-tuning a ``transformers`` Mask2Former, EoMT or VidEoMT on the training data.

The recipe (:class:`FinetuneConfig`, ``config/finetune_*.yaml``) is a training config
whose ``pretrained`` names the model folder: the same data sources, curriculum,
augmentation, optimiser, loader and torchrun path as kMaX's training (the batches come
from :mod:`.stream`, one per step and rank), with the model's own loss in place of
:mod:`.losses`: its criterion (Hungarian matching, then cross-entropy with its
no-object weight, point-sampled mask BCE and dice, weighted as its config.json says),
given the frames' segments as ``mask_labels`` / ``class_labels``.

- Mask2Former and EoMT compute it in their forward pass, frame by frame.
- VidEoMT's forward does not take labels; each pair of the batch (frames 2i, 2i+1 of a
  sequence) runs as a two-frame clip, so frame 2i+1's queries are propagated from
  frame 2i's as at inference, and its criterion (``get_loss_dict``) scores every frame.
- EoMT and VidEoMT train with masked attention in their query blocks, kept with
  probability ``attn_mask_probs``, annealed linearly from its starting value to 0 by the
  last step (the EoMT paper's mask annealing), so the saved model runs without masks,
  as the released checkpoints do.

The result is a model folder (``save_pretrained``: config.json and model.safetensors,
plus the source's preprocessor_config.json) that the model registry opens; ``last/``
is the same plus the optimizer and progress, for ``--resume``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from ..config import param, to_mapping
from ..data.frames import VideoDataset
from ..errors import ConfigError
from ..model.label_tables import label_index
from ..model.transformers_segmenter import (ARCHITECTURES, Preprocessing, check_weights,
                                            model_folder, read_config)
from .batch import Batch, Target
from .config import TrainConfig
from .distributed import Distributed
from .events import EventLog
from .frames import open_frames, train_frames
from .stream import PairDataset, Shard, make_loader, next_batch
from .trainer import Trainer, run_schedule

log = logging.getLogger(__name__)

FINAL = "final"   # the model folder written at the end, under out_dir
LAST = "last"     # the resume folder: the weights as a model folder, plus STATE
STATE = "training_state.pt"   # optimizer and progress (tensors and numbers only)
RECORD = "vps_ros_training.json"
#: Recipe keys of a kMaX training that a fine-tuning run has no use for.
KMAX_ONLY = ("model", "loss", "init")
#: Recipe keys of a training config that fine-tuning does not read yet.
NOT_READ = ("sampling", "val")


@dataclass(frozen=True)
class FinetuneConfig(TrainConfig):
    pretrained: str = param("", "transformers model folder or hf: id to fine-tune "
                            "(Mask2Former, EoMT or VidEoMT); its own loss is used")
    input_height: int = param(0, "training frames are resized to this size before the "
                              "crops (0: the model's input size)", lo=0, hi=8192)
    input_width: int = param(0, "see input_height", lo=0, hi=8192)


def check_recipe(config: FinetuneConfig, mapping: dict, path: str) -> None:
    """What a fine-tuning recipe must hold beyond a training config's checks."""
    if not config.pretrained:
        raise ConfigError(f"{path}: pretrained: name the transformers model folder to "
                          "fine-tune")
    extra = [key for key in KMAX_ONLY if key in mapping]
    if extra:
        raise ConfigError(f"{path}: {', '.join(extra)}: kMaX training settings; a "
                          "fine-tuning recipe uses the model's own architecture and loss "
                          "(weights in its config.json)")
    unread = [key for key in NOT_READ if key in mapping] + \
        (["data.extra"] if config.data.extra else [])
    if unread:
        raise ConfigError(f"{path}: {', '.join(unread)}: a fine-tuning run does not read "
                          "them yet (it draws its pairs from data.train, uniformly)")
    if (config.input_height == 0) != (config.input_width == 0) or \
            config.input_height % 32 or config.input_width % 32:
        raise ConfigError(f"{path}: input_height and input_width: both 0 or both multiples "
                          f"of 32, got {config.input_height}x{config.input_width}")


def _image_loss(model: torch.nn.Module, net: torch.nn.Module, pixels: torch.Tensor,
                masks: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
    """Mask2Former / EoMT: the forward pass computes the loss of each frame."""
    return model(pixel_values=pixels, mask_labels=masks, class_labels=labels).loss


def _clip_loss(model: torch.nn.Module, net: torch.nn.Module, pixels: torch.Tensor,
               masks: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
    """VidEoMT: each pair a two-frame clip; the outputs are frame-major (frame t of
    clip b at t * B + b), so the labels are put in that order."""
    clips = pixels.reshape(-1, 2, *pixels.shape[1:])
    out = model(pixel_values_videos=clips)
    order = [2 * b + t for t in range(2) for b in range(len(clips))]
    parts = net.get_loss_dict(out.masks_queries_logits, out.class_queries_logits,
                              [masks[k] for k in order], [labels[k] for k in order], None)
    return net.get_loss(parts)


#: The model types ``vps-ros train`` fine-tunes, and how each computes its own loss.
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "mask2former": _image_loss, "eomt": _image_loss, "videomt": _clip_loss}


class FinetuneTrainer:
    """One fine-tuning run (one process, or one rank of a torchrun job)."""

    learning_rate = Trainer.learning_rate   # the one schedule: warm-up, polynomial decay

    def __init__(self, config: FinetuneConfig, config_path: str = "",
                 train_data: VideoDataset | None = None,
                 dist: Distributed | None = None) -> None:
        self.config, self.config_path = config, config_path
        self.out_dir = Path(config.out_dir)
        self.dist = dist or Distributed.from_environment(config.device)
        self.device = self.dist.device
        if config.threads:
            torch.set_num_threads(config.threads)
        where = f"{config_path or 'recipe'}: pretrained {config.pretrained!r}"
        self.folder = model_folder(config.pretrained)
        model_config = read_config(self.folder, where)
        self.kind = str(model_config["model_type"])
        if self.kind not in LOSSES:
            raise ConfigError(f"{where}: a {self.kind} model cannot be fine-tuned by "
                              f"vps-ros train; it fine-tunes {', '.join(LOSSES)} models")
        check_weights(self.folder, where)
        self.preprocessing = Preprocessing.of_folder(self.folder, where)
        size = self._input_size(model_config, where)
        self.shard = Shard(self.dist.rank, self.dist.world_size, config.optim.accumulate)
        self.shard.check(config)
        train = train_data if train_data is not None else open_frames(config.data.train)
        self.classes = train.classes
        self.frames = train_frames(train, size, config.data.train.max_frames)
        self.pairs = PairDataset(self.frames, config)
        torch.manual_seed(config.seed)
        self.net, self.label_of = self._load(model_config, where)
        self.net.to(self.device).train()
        self.model = self.dist.wrap(self.net, config.distributed.sync_batchnorm,
                                    find_unused=True)
        self.optimizer = torch.optim.AdamW(_param_groups(self.net, config.optim.weight_decay),
                                           lr=config.optim.lr)
        self.amp_dtype = getattr(torch, config.amp_dtype)
        self.amp = config.mixed_precision and (self.device.startswith("cuda")
                                               or self.amp_dtype == torch.bfloat16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and
                                           self.amp_dtype == torch.float16)
        self.mask_probs = getattr(self.net, "attn_mask_probs", None)
        self.mask_start = None if self.mask_probs is None else self.mask_probs.clone()
        self.mean = torch.tensor(self.preprocessing.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(self.preprocessing.std, device=self.device).view(1, 3, 1, 1)
        self.events = EventLog(self.out_dir / "tensorboard"
                               if self.dist.is_main and config.tensorboard else None)
        self.step = 0
        self.seconds = 0.0
        self.history: list[dict] = []

    def _input_size(self, model_config: dict, where: str) -> tuple[int, int]:
        """Frames are resized to this before the crops; EoMT's ViT takes its square only."""
        config = self.config
        size = (config.input_height, config.input_width) if config.input_height \
            else self.preprocessing.input_size
        if ARCHITECTURES[self.kind].fixed_size:
            side = int(model_config.get("image_size", 0))
            size = (side, side) if not config.input_height else size
            for i, stage in enumerate(config.curriculum):
                if list(stage.crop) != [side, side]:
                    raise ConfigError(f"{self.config_path}: curriculum[{i}].crop "
                                      f"{stage.crop}: a {self.kind} model takes {side}x{side} "
                                      f"input only ({where}); use crop [{side}, {side}]")
        return size

    def _load(self, model_config: dict, where: str) -> tuple[torch.nn.Module, torch.Tensor]:
        """The network, and per class of the data the model's label index. A model whose
        labels do not name the data's classes gets a class head for them (new where the
        number differs: transformers re-initialises a head of another shape)."""
        import transformers
        transformers.utils.logging.disable_progress_bar()
        labels = [str(model_config["id2label"][k])
                  for k in sorted(model_config.get("id2label") or {}, key=int)]
        index = label_index(labels, self.classes) if labels else None
        relabel = {}
        if index is None or (index < 0).any():
            names = [c.name for c in self.classes]
            log.info("%s: its labels (%s) do not name the classes of %s: its class head is "
                     "set up for them", where, ", ".join(labels[:6]), self.classes.name)
            relabel = {"id2label": dict(enumerate(names)),
                       "label2id": {n: i for i, n in enumerate(names)},
                       "num_labels": len(names), "ignore_mismatched_sizes": True}
            index = np.arange(len(names))
        model_class = getattr(transformers, ARCHITECTURES[self.kind].model_class)
        with self.dist.main_first():
            try:
                net = model_class.from_pretrained(self.folder, use_safetensors=True,
                                                  local_files_only=True, **relabel)
            except Exception as exc:  # corrupt or mismatched weights
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise ConfigError(f"{where}: its weights cannot be loaded ({first})") from None
        return net, torch.as_tensor(index, dtype=torch.int64)

    def resume(self) -> None:
        """Continue from ``out_dir/last/`` (the weights as a model folder, the optimizer
        and progress in ``training_state.pt``, read with ``weights_only``)."""
        last = self.out_dir / LAST
        state_path = last / STATE
        if not state_path.is_file():
            raise ConfigError(f"{last}: no fine-tuning run to resume here (no {STATE})")
        record = json.loads((last / RECORD).read_text())
        if record.get("pretrained") != self.config.pretrained:
            raise ConfigError(f"{last}: fine-tunes {record.get('pretrained')!r}, not "
                              f"{self.config.pretrained!r} as {self.config_path or 'the recipe'}"
                              " says")
        # save_pretrained may store tensors under the checkpoint's own names: read the
        # folder back as transformers does
        saved = type(self.net).from_pretrained(last, use_safetensors=True,
                                               local_files_only=True)
        self.net.load_state_dict(saved.state_dict())
        state = torch.load(state_path, map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        if "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.seconds = int(state["step"]), float(state["seconds"])
        self.history = [json.loads(entry) for entry in state["history"]]
        log.info("resumed %s at step %d", last, self.step)

    def run(self, stop_at: int | None = None) -> Path:
        """Train to the end of the curriculum and return the saved model folder; with
        ``stop_at``, stop after that step and return the resume folder."""
        return run_schedule(self, stop_at, "fine-tuning", LAST, FINAL)

    def error_step(self) -> int:
        """The step an error raised now belongs to."""
        return self.step + 1

    def _loop(self, end: int) -> None:
        loader = make_loader(self.pairs, self.shard, self.step, end,
                             self.device.startswith("cuda") and self.config.loader.pin_memory)
        batches: Iterator[Batch] = iter(loader)
        with tqdm(total=end, initial=self.step, desc="fine-tune", unit="step", dynamic_ncols=True,
                  disable=not self.dist.is_main) as bar:
            while self.step < end:
                start = time.perf_counter()
                micro = [next_batch(batches).to(self.device)
                         for _ in range(self.shard.accumulate)]
                loss = self.optimize(micro)
                seconds = time.perf_counter() - start
                self.step += 1
                self.seconds += seconds
                self._record(loss, seconds)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")
                if self.dist.is_main and (self.step % self.config.checkpoint_every == 0
                                          or self.step == end):
                    self.save(self.out_dir / LAST, with_state=True)

    def optimize(self, batches: list[Batch]) -> float:
        """One optimizer step on this rank's micro-batches (each counts 1 / their
        number; DistributedDataParallel averages the gradients over ranks)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        if self.mask_probs is not None:
            done = (self.step + 1) / self.config.total_steps
            self.mask_probs.copy_(self.mask_start * (1.0 - done))
        # The criterion samples points at random: the draws of a step are a function of
        # (seed, step, rank), so a resumed run repeats an uninterrupted one.
        torch.manual_seed(int(np.random.SeedSequence(
            [self.config.seed, self.step, self.dist.rank]).generate_state(1)[0]))
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for k, batch in enumerate(batches):
            with self.dist.no_sync(self.model, k < len(batches) - 1):
                masks, labels = self._labels(batch.targets)
                with self._autocast():
                    loss = LOSSES[self.kind](self.model, self.net, self._pixels(batch.images),
                                             masks, labels)
                self.scaler.scale(loss / len(batches)).backward()
            total += float(loss.detach()) / len(batches)
        if self.config.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return total

    def _pixels(self, images: torch.Tensor) -> torch.Tensor:
        """The model's input: RGB 0..255 scaled and normalised as its processor does."""
        return ((images.float() * self.preprocessing.rescale - self.mean) / self.std
                ).contiguous()

    def _labels(self, targets: list[Target]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per frame its segments' binary masks (cells mostly covered, at the batch's
        mask stride: the criterion samples points at normalised coordinates) and the
        model's label of each."""
        masks, labels = [], []
        for target in targets:
            binary = (target.masks > 0.5).float()
            keep = binary.flatten(1).any(1)
            masks.append(binary[keep])
            labels.append(self.label_of.to(target.classes.device)[target.classes[keep]])
        return masks, labels

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast(self.device.split(":")[0], dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def _record(self, loss: float, seconds: float) -> None:
        loss = self.dist.mean([loss])[0]
        if not self.dist.is_main:
            return
        lr = self.learning_rate(self.step - 1)
        self.history.append({"step": self.step, "loss": round(loss, 5),
                             "seconds": round(seconds, 4), "lr": lr})
        if self.step % self.config.log_every == 0:
            self.events.scalars(self.step, {"loss/total": loss, "optim/lr": lr})

    def save(self, folder: Path, with_state: bool = False) -> Path:
        """The model folder (safetensors), its preprocessing and how it was trained;
        ``with_state``: also what :meth:`resume` needs."""
        self.net.save_pretrained(folder, safe_serialization=True)
        if with_state:
            state = {"optimizer": self.optimizer.state_dict(), "step": self.step,
                     "seconds": self.seconds,
                     "history": [json.dumps(entry) for entry in self.history]}
            if self.scaler.is_enabled():
                state["scaler"] = self.scaler.state_dict()
            torch.save(state, folder / STATE)
        source = self.folder / "preprocessor_config.json"
        if source.is_file():
            shutil.copyfile(source, folder / "preprocessor_config.json")
        (folder / RECORD).write_text(json.dumps({
            "pretrained": self.config.pretrained, "config_file": self.config_path,
            "steps": self.step, "train_seconds": round(self.seconds, 1),
            "classes": self.classes.name, "processes": self.dist.world_size,
            "config": to_mapping(self.config)}, indent=1, default=str))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "history.jsonl", "w") as f:
            f.writelines(json.dumps(entry) + "\n" for entry in self.history)
        return folder


def _param_groups(net: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on norms, biases and embeddings of one axis."""
    decay = [p for p in net.parameters() if p.ndim > 1]
    rest = [p for p in net.parameters() if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": rest, "weight_decay": 0.0}]
