"""Training batches streamed through a ``torch.utils.data.DataLoader``.

Optimizer step ``s`` trains on a global batch of ``P`` frame pairs (the curriculum
stage's ``pairs``). Pair ``k`` of step ``s`` (its *slot*) is a function of
``(seed, s, k)`` alone: which frames, which crop, flip and colour change. The ranks of
a distributed run split the slots of every step evenly (rank ``r`` of ``W`` takes
slots ``r P/W .. (r+1) P/W - 1``), and each rank's share is split again into
``accumulate`` micro-batches. So the global batch does not depend on the number of
processes, workers or micro-batches, and a run resumed at step ``s`` draws exactly the
batches an uninterrupted run would have.

Frames are read, augmented and turned into targets in the loader's worker processes;
the training process holds only the dataset's list of frame keys.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import ConfigError, VpsRosError
from .batch import Batch, PairSample, collate, make_pair
from .config import StageConfig, TrainConfig
from .frames import TrainFrames, pick_pair
from .sampling import ClassSampler


class PairDataset(Dataset):
    """Items are ``(step, slot)``; each is one augmented pair of frames of one sequence."""

    def __init__(self, frames: TrainFrames, config: TrainConfig,
                 sampler: ClassSampler | None = None,
                 cumulative: np.ndarray | None = None) -> None:
        """``sampler`` and the running sum of frame weights ``cumulative`` draw frames by
        class (:mod:`.sampling`); without them frames are drawn uniformly."""
        self.frames = frames
        self.config = config
        self.sampler = sampler
        self.cumulative = cumulative

    def __getitem__(self, item: tuple[int, int]) -> PairSample:
        step, slot = item
        return self.sample(step, slot, self.config.stage_of(step))

    def sample(self, step: int, slot: int, stage: StageConfig) -> PairSample:
        config = self.config
        rng = np.random.default_rng([config.seed, step, slot])
        (s, i), (_, j) = pick_pair(self.frames.lengths, config.augment.max_pair_gap, rng,
                                   self.cumulative, getattr(self.frames, "gaps", None))
        pair = (self.frames.load(s, i), self.frames.load(s, j))
        if self.sampler is not None and config.sampling.focus_crop \
                and rng.random() < config.sampling.focus_crop:
            centers = self.sampler.focus_centers(pair, rng)
            if centers[0] is not None or centers[1] is not None:
                scale = config.sampling.focus_scale
                return make_pair(pair, stage, config.augment, rng, centers,
                                 (scale[0], scale[1]))
        return make_pair(pair, stage, config.augment, rng)


@dataclass(frozen=True)
class Shard:
    """This process's part of every step: rank ``rank`` of ``world_size``, in
    ``accumulate`` micro-batches."""

    rank: int = 0
    world_size: int = 1
    accumulate: int = 1

    def check(self, config: TrainConfig) -> None:
        """ConfigError unless every stage's pairs split evenly over ranks and micro-batches."""
        parts = self.world_size * self.accumulate
        for i, stage in enumerate(config.curriculum):
            if stage.pairs % parts:
                raise ConfigError(f"curriculum[{i}].pairs {stage.pairs} does not split over "
                                  f"{self.world_size} process(es) x {self.accumulate} "
                                  f"micro-batch(es) (optim.accumulate): make it a multiple "
                                  f"of {parts}")

    def micro_batches(self, pairs: int) -> list[list[int]]:
        """The slots of this rank's micro-batches of a step with ``pairs`` pairs."""
        per_rank = pairs // self.world_size
        per_micro = per_rank // self.accumulate
        first = self.rank * per_rank
        return [list(range(first + m * per_micro, first + (m + 1) * per_micro))
                for m in range(self.accumulate)]


class StepSampler(Sampler):
    """Batch sampler: this rank's micro-batches of steps ``start .. end - 1``, in order,
    as lists of ``(step, slot)`` items."""

    def __init__(self, config: TrainConfig, shard: Shard, start: int, end: int) -> None:
        self.config, self.shard, self.start, self.end = config, shard, start, end

    def __len__(self) -> int:
        return max(0, self.end - self.start) * self.shard.accumulate

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.end):
            for slots in self.shard.micro_batches(self.config.stage_of(step).pairs):
                yield [(step, slot) for slot in slots]


def make_loader(dataset: PairDataset, shard: Shard, start: int, end: int,
                pin_memory: bool) -> DataLoader:
    """Micro-batches (:class:`Batch`) of steps ``start .. end - 1`` for this rank."""
    loader = dataset.config.loader
    workers = loader.workers
    return DataLoader(dataset, batch_sampler=StepSampler(dataset.config, shard, start, end),
                      collate_fn=collate, num_workers=workers, pin_memory=pin_memory,
                      persistent_workers=workers > 0, worker_init_fn=_quiet_worker,
                      prefetch_factor=loader.prefetch if workers else None,
                      multiprocessing_context=loader.start_method if workers else None)


def next_batch(batches: Iterator[Batch]) -> Batch:
    """The loader's next micro-batch; a worker's VpsRosError comes back as itself, with its
    own message (the DataLoader wraps it in a traceback)."""
    try:
        return next(batches)
    except VpsRosError as exc:
        raise type(exc)(worker_message(str(exc))) from None


def worker_message(text: str) -> str:
    """The original message of an exception re-raised from a DataLoader worker."""
    if not text.startswith("Caught "):
        return text
    found = re.findall(r"^\S*(?:Error|Exception): (.*)$", text, flags=re.MULTILINE)
    return found[-1] if found else text.strip().splitlines()[-1]


def _quiet_worker(_: int) -> None:
    """One thread per worker: the workers are the parallelism."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
