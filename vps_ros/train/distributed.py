"""The distributed engine, ``torch.distributed`` as launched by ``torchrun``, behind one
small interface: the trainer never calls the engine itself.

``torchrun --nproc_per_node N [--nnodes M --rdzv-endpoint HOST:PORT] -m vps_ros.train``
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` in every process;
without them (``vps-ros train``) the run is one process and every call here is a no-op.
GPUs talk over NCCL (one GPU per process, ``cuda:LOCAL_RANK``), CPUs over gloo.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import ConfigError
from ..model.mask_segmenter import resolve_device


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that validates, logs and writes checkpoints."""
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: str, timeout_minutes: float = 30.0) -> "Distributed":
        """One process, or this rank of a torchrun job (its process group initialised)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        device = resolve_device(device)
        if world_size == 1:
            return cls(device=device)
        rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
        backend = "gloo"
        if device.startswith("cuda"):
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
            present = torch.cuda.device_count()
            if local_world > present:
                raise ConfigError(f"--nproc_per_node {local_world} asks for one GPU per "
                                  f"process, but this machine has {present}: use "
                                  f"--nproc_per_node {present} or fewer")
            torch.cuda.set_device(local_rank)
            device, backend = f"cuda:{local_rank}", "nccl"
        dist.init_process_group(backend, timeout=timedelta(minutes=timeout_minutes))
        return cls(rank, world_size, local_rank, device)

    def wrap(self, net: nn.Module, sync_batchnorm: bool, find_unused: bool = False
             ) -> nn.Module:
        """``net`` ready for training here: DistributedDataParallel across ranks (batch
        norms synchronised on GPUs when asked), ``net`` itself in a one-process run.
        ``find_unused``: some parameters may get no gradient in a step (a transformers
        model's parts its loss does not reach), which DDP must then look for.

        Synchronised batch norm replaces ``net``'s BatchNorm modules in place."""
        if self.world_size == 1:
            return net
        if sync_batchnorm and self.device.startswith("cuda"):
            nn.SyncBatchNorm.convert_sync_batchnorm(net)
        device_ids = [self.local_rank] if self.device.startswith("cuda") else None
        return DistributedDataParallel(net, device_ids=device_ids,
                                       find_unused_parameters=find_unused)

    @contextlib.contextmanager
    def no_sync(self, model: nn.Module, active: bool) -> Iterator[None]:
        """Skip the gradient all-reduce of this backward (a micro-batch that is not the
        step's last one)."""
        with model.no_sync() if active and isinstance(model, DistributedDataParallel) \
                else contextlib.nullcontext():
            yield

    def mean(self, values: list[float]) -> list[float]:
        """The mean over ranks of each value (for logging)."""
        if self.world_size == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return (tensor / self.world_size).tolist()

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block before the others (e.g. fills a download cache once)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def lost_peer(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a collective failing because another rank is gone (gloo
        raises a RuntimeError naming itself, e.g. "Connection reset by peer"; NCCL and
        newer torch raise DistError)."""
        if self.world_size == 1:
            return False
        return isinstance(exc, dist.DistError) or (
            isinstance(exc, RuntimeError) and ("gloo" in str(exc) or "NCCL" in str(exc)))

    def close(self) -> None:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def launched_rank() -> int:
    """The global rank torchrun gave this process (0 outside torchrun)."""
    return int(os.environ.get("RANK", "0"))
