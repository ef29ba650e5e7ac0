"""Checkpoint files: weights, model config, class table and training metadata.

A checkpoint is a ``torch.save`` of a dict holding only tensors and JSON-able values,
so that it loads with ``torch.load(..., weights_only=True)`` and never executes pickled
code (users load files they downloaded). Every way a file can be wrong (missing,
truncated, not a checkpoint, another architecture, another class table) raises one
:class:`CheckpointError` naming the file and the mismatch.
"""
from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import from_mapping, to_mapping
from ..errors import CheckpointError, VpsRosError, first_line
from ..types import ClassTable
from .config import ModelConfig, PostprocessConfig
from .network import KMaXNet

FORMAT = "vps_ros.segmenter"
VERSION = 1
LFS_POINTER = b"version https://git-lfs.github.com/spec/"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the network with its weights and what describes it."""

    net: KMaXNet
    classes: ClassTable
    postprocess: PostprocessConfig
    training: dict[str, Any]
    extra: dict[str, Any]


def save_checkpoint(path: str | Path, net: KMaXNet, classes: ClassTable,
                    postprocess: PostprocessConfig | None = None,
                    training: dict[str, Any] | None = None,
                    extra: dict[str, Any] | None = None) -> None:
    """Write ``net`` with its config and ``classes``; ``extra`` holds further plain data
    (e.g. optimizer state for resuming). Written to a temporary file, then renamed, so
    an interrupted save never leaves a truncated checkpoint behind."""
    if len(classes) != net.num_classes:
        raise ValueError(f"class table {classes.name!r} has {len(classes)} classes, the "
                         f"network predicts {net.num_classes}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, "model": to_mapping(net.config),
               "classes": classes.to_dict(),
               "postprocess": to_mapping(postprocess or PostprocessConfig()),
               "training": json.loads(json.dumps(training or {})),  # plain data only
               "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
               **(extra or {})}
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)


def load_checkpoint(path: str | Path, classes: ClassTable | None = None) -> Checkpoint:
    """Read a checkpoint and build its network on the CPU.

    With ``classes``, the checkpoint's class table must equal it.
    """
    path = Path(path)
    payload = _read(path)
    try:
        config = from_mapping(ModelConfig, payload["model"], "model")
        table = ClassTable.from_dict(payload["classes"], "classes")
        postprocess = from_mapping(PostprocessConfig, payload.get("postprocess"), "postprocess")
    except VpsRosError as exc:
        raise CheckpointError(f"{path}: architecture or class table not understood by this "
                              f"version of vps_ros: {exc}") from None
    if classes is not None and table != classes:
        raise CheckpointError(f"{path}: trained for class table {_describe(table)}, but "
                              f"{_describe(classes)} was asked for")
    net = KMaXNet(config, len(table))
    _load_weights(path, net, payload["state_dict"], table)
    extra = {k: v for k, v in payload.items()
             if k not in ("format", "version", "model", "classes", "postprocess", "training",
                          "state_dict")}
    return Checkpoint(net, table, postprocess, dict(payload.get("training") or {}), extra)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    with path.open("rb") as head:
        if head.read(len(LFS_POINTER)) == LFS_POINTER:
            raise CheckpointError(f"{path}: is a Git LFS pointer, not the weights; run "
                                  "git lfs pull")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if not found:
            raise CheckpointError(f"{path}: not a checkpoint (torch cannot read it as "
                                  "weights-only data)") from None
        raise CheckpointError(f"{path}: refusing to load: the file holds pickled objects other "
                              f"than tensors and plain data ({found.group(1)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError,
            AttributeError) as exc:
        raise CheckpointError(f"{path}: truncated or not a checkpoint "
                              f"({first_line(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a vps_ros segmenter checkpoint (no "
                              f"format: {FORMAT!r} entry)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')!r}, this "
                              f"vps_ros reads version {VERSION}")
    missing = [k for k in ("model", "classes", "state_dict") if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: state_dict is not a mapping of names to tensors")
    return payload


def _load_weights(path: Path, net: KMaXNet, state: dict[str, Any], table: ClassTable) -> None:
    expected = net.state_dict()
    head = state.get("final.class_head.bias")
    if head is not None and head.shape[0] != len(table) + 1:
        raise CheckpointError(f"{path}: class head predicts {head.shape[0] - 1} classes but "
                              f"the checkpoint's class table {_describe(table)} has {len(table)}")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state)
                   if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"missing {_few(missing)}")
        if unexpected:
            details.append(f"unexpected {_few(unexpected)}")
        if wrong:
            details.append("shapes differ for " + _few(
                [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in wrong]))
        raise CheckpointError(f"{path}: weights are from another architecture than the "
                              f"checkpoint's model config: {'; '.join(details)}")
    net.load_state_dict(state)


def _few(items: list[str], limit: int = 4) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _describe(table: ClassTable) -> str:
    return f"{table.name!r} ({', '.join(c.name for c in table)})"
