"""The two runs of ``vps-ros compare``: their per-drive statistics read, checked to be
comparable, and laid out as sampling units for the paired bootstrap.

A run is the ``--out`` folder of ``vps-ros replay``: a fleet's ``drives/<drive>.json``
(one per drive, written by any executor) or a single drive's ``statistics.json``. With
several drives the units are the drives; with one, blocks of consecutive frames of each
camera stream (VPQ's windows span frames, so frames are not resampled one by one: each
window's counts belong to the frame it ends at and stay whole inside a block).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..metrics import LabelSpace, MetricStats
from ..types import ClassTable
from .fleet import DRIVES_DIR
from .fleet_totals import merge_drives
from .latency import LatencyHistogram, latency_summary
from .statistics import STATISTICS_FILE

COUNTS = ("dropped_frames", "id_switches", "recoveries")


@dataclass
class Run:
    """One replay's output folder, read."""

    folder: Path
    fleet: bool                          # drives/ of a fleet replay, else statistics.json
    drives: dict[str, dict[str, Any]]    # name -> its statistics file, by name
    classes: ClassTable
    label_divisor: int
    windows: tuple[int, ...]

    def totals(self) -> tuple[MetricStats, dict[str, Any]]:
        """The run's statistics added exactly (the fleet's own merge for a fleet) and its
        counts and latency p50 / p95 (a fleet's from its histogram, a single drive's
        exact, as their metrics.json)."""
        if self.fleet:
            rows = {name: {"error": None} for name in self.drives}
            totals = merge_drives(self.folder / DRIVES_DIR, dict.fromkeys(self.drives), rows)
            return totals.stats, {**totals.counts, "latency_ms": totals.latency.summary()}
        (data,) = self.drives.values()
        latency = [r["latency_ms"] for records in data["frame_records"].values()
                   for r in records if r["latency_ms"] is not None]
        return drive_stats(data, self), {**{k: data[k] for k in COUNTS},
                                         "latency_ms": latency_summary(latency)}


def drive_stats(data: dict[str, Any], run: Run) -> MetricStats:
    """A drive's sequences merged by the metric core."""
    total = MetricStats.zeros(LabelSpace(run.classes, run.label_divisor), run.windows)
    for state in data["sequences"].values():
        total.merge(MetricStats.from_state_dict(state))
    return total


def load_run(folder: Path, label: str) -> Run:
    """The run in ``folder`` (``label``: "A" or "B", for messages); a DataError when it
    holds no per-drive statistics, a failed drive or a drive without ground truth."""
    folder = Path(folder)
    drives_dir, single = folder / DRIVES_DIR, folder / STATISTICS_FILE
    if drives_dir.is_dir():
        paths = sorted(p for p in drives_dir.glob("*.json") if not p.name.startswith("."))
        fleet = True
    elif single.is_file():
        paths, fleet = [single], False
    else:
        raise DataError(f"run {label} {folder}: holds no per-drive statistics (neither "
                        f"{DRIVES_DIR}/*.json of a fleet replay nor {STATISTICS_FILE} of a "
                        "one-drive replay); replay it with this version of vps-ros")
    if not paths:
        raise DataError(f"run {label} {drives_dir}: no drive statistics in it")
    drives: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"run {label} {path}: unreadable ({exc})") from None
        name = data.get("drive", path.stem)
        if data.get("error") is not None:
            raise DataError(f"run {label} {path}: drive {name!r} failed ({data['error']}); "
                            "its statistics are missing: replay it again (--resume)")
        if not data.get("sequences"):
            raise DataError(f"run {label} {path}: drive {name!r} has no annotated frame "
                            "(no ground truth): nothing to compare")
        drives[name] = data
    first_name, first = next(iter(drives.items()))
    for name, data in drives.items():
        if (data["classes"], data["label_divisor"], data["windows"]) != \
                (first["classes"], first["label_divisor"], first["windows"]):
            raise DataError(f"run {label} {folder}: drive {name!r} was scored with another "
                            f"class table, label divisor or windows than {first_name!r}")
    return Run(folder, fleet, drives, ClassTable.from_dict(first["classes"]),
               int(first["label_divisor"]), tuple(first["windows"]))


def check_comparable(a: Run, b: Run) -> None:
    """A DataError naming the first difference of windows, class tables, drives or
    ground truth (frames annotated, ground-truth pixels per class, tracks, tubes)."""
    if a.windows != b.windows:
        raise DataError(f"VPQ windows differ: {list(a.windows)} in A, {list(b.windows)} in B")
    if a.classes.to_dict() != b.classes.to_dict() or a.label_divisor != b.label_divisor:
        raise DataError(f"class tables differ: {a.classes.name!r} (label divisor "
                        f"{a.label_divisor}) in A, {b.classes.name!r} ({b.label_divisor}) in B")
    only_a, only_b = sorted(set(a.drives) - set(b.drives)), sorted(set(b.drives) - set(a.drives))
    if only_a or only_b:
        which, drive = ("A", only_a[0]) if only_a else ("B", only_b[0])
        raise DataError(f"drives differ: drive {drive!r} is in run {which} only "
                        f"({len(only_a)} in A only, {len(only_b)} in B only)")
    if a.fleet != b.fleet and len(a.drives) == 1:
        raise DataError("one run is a fleet of one drive and the other a single-drive replay: "
                        "replay both the same way")
    for name in a.drives:
        difference = _truth_difference(a.drives[name], b.drives[name])
        if difference:
            raise DataError(f"ground truth differs in drive {name!r}: {difference}")


def _truth_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """What of the ground truth the statistics show differs: the sequences, their
    annotated frames, ground-truth pixels per class (confusion rows), ground-truth tracks
    and tubes (TP + FN); None when nothing does."""
    if sorted(a["sequences"]) != sorted(b["sequences"]):
        return f"sequences {sorted(a['sequences'])} in A, {sorted(b['sequences'])} in B"
    for sequence, sa in a["sequences"].items():
        sb = b["sequences"][sequence]
        checks = (("annotated frames", sa["num_frames"], sb["num_frames"]),
                  ("ground-truth tracks", sa["num_tracks"], sb["num_tracks"]),
                  ("ground-truth pixels per class", np.sum(sa["confusion"], axis=1).tolist(),
                   np.sum(sb["confusion"], axis=1).tolist()),
                  ("ground-truth tubes per window and class",
                   (np.add(sa["tp"], sa["fn"])).tolist(), (np.add(sb["tp"], sb["fn"])).tolist()))
        for what, va, vb in checks:
            if va != vb:
                return f"sequence {sequence!r}: {what} {_short(va)} in A, {_short(vb)} in B"
    frames_a, frames_b = a.get("frame_records"), b.get("frame_records")
    if frames_a is not None and frames_b is not None:
        for sequence, records in frames_a.items():
            other = frames_b.get(sequence, [])
            if [r["frame"] for r in records] != [r["frame"] for r in other]:
                return f"sequence {sequence!r}: other replayed frames"
    return None


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class Units:
    """The sampling units of one run as dense arrays, unit first: what a resample sums
    (weights @ arrays) before the metric core's formulas (``metrics.resampled``)."""

    names: list[str]
    vpq: np.ndarray          # (U, 4, W, C): IoU sums, TP, FP, FN
    confusion: np.ndarray    # (U, C+1, C+1)
    counts: np.ndarray       # (U, len(COUNTS))
    latency_keys: np.ndarray  # (B,) sorted histogram bins
    latency: np.ndarray      # (U, B)
    aq_parts: np.ndarray | None = None   # (U, 2): AQ sum, tracks (drives: additive)
    gt_size: np.ndarray | None = None    # frame blocks: (U, G), (U, P), (U, K) track pixels
    pred_size: np.ndarray | None = None
    overlap: np.ndarray | None = None
    pair_gt: np.ndarray | None = None    # (K,) columns of gt_size / pred_size
    pair_pred: np.ndarray | None = None


def block_length(run: Run) -> int:
    """Frames per block for a single drive: at least ``n^(1/3)`` (the usual order of a
    block bootstrap's block length) and long enough to hold the widest VPQ window at the
    drive's annotation spacing."""
    (data,) = run.drives.values()
    records = [r for rs in data["frame_records"].values() for r in rs]
    annotated = sum(r["stats"] is not None for r in records)
    spacing = math.ceil(len(records) / max(annotated, 1))
    return max(math.ceil(len(records) ** (1 / 3)), max(run.windows) * spacing)


def drive_units(run: Run) -> Units:
    """One unit per drive: its sequences' statistics summed, AQ sum and tracks additive
    (tracks of different drives are different tracks)."""
    stats = [drive_stats(run.drives[name], run) for name in run.drives]
    histograms = [LatencyHistogram.from_state_dict(run.drives[n]["latency"]) for n in run.drives]
    keys = np.array(sorted({k for h in histograms for k in h.bins}), np.int64)
    column = {int(k): j for j, k in enumerate(keys)}
    latency = np.zeros((len(stats), len(keys)))
    for row, histogram in enumerate(histograms):
        for key, count in histogram.bins.items():
            latency[row, column[key]] = count
    return Units(
        list(run.drives),
        np.stack([np.stack([s.vpq.iou, s.vpq.tp, s.vpq.fp, s.vpq.fn]) for s in stats]),
        np.stack([s.stq.confusion for s in stats]).astype(np.float64),
        np.array([[run.drives[n][k] for k in COUNTS] for n in run.drives], np.float64),
        keys, latency,
        aq_parts=np.array([[s.stq.aq_sum, s.stq.num_tracks] for s in stats], np.float64))


def block_units(run: Run, length: int) -> Units:
    """Blocks of ``length`` consecutive replayed frames of each camera stream of a single
    drive (the last block of a stream may be shorter), named ``<sequence>@<first frame>``."""
    (data,) = run.drives.values()
    nc, nw = len(run.classes), len(run.windows)
    blocks = [(sequence, records[start:start + length])
              for sequence, records in data["frame_records"].items()
              for start in range(0, len(records), length)]
    gt_cols: dict[tuple[str, int], int] = {}
    pred_cols: dict[tuple[str, int], int] = {}
    pair_cols: dict[tuple[int, int], int] = {}
    vpq = np.zeros((len(blocks), 4, nw, nc))
    confusion = np.zeros((len(blocks), nc + 1, nc + 1))
    counts = np.zeros((len(blocks), len(COUNTS)))
    sparse: list[tuple[dict, dict, dict]] = []
    latencies = []
    for u, (sequence, records) in enumerate(blocks):
        gt, pred, pairs = {}, {}, {}
        for r in records:
            counts[u] += (r["latency_ms"] is None, r["switches"], r["recoveries"])
            s = r["stats"]
            if s is None:
                continue
            for k, key in enumerate(("iou", "tp", "fp", "fn")):
                vpq[u, k] += np.asarray(s[key], np.float64).reshape(nw, nc)
            np.add.at(confusion[u], tuple(np.asarray(s["confusion"][:2], np.int64)),
                      s["confusion"][2])
            for ids, pixels, target, columns in ((*s["gt_tracks"], gt, gt_cols),
                                                 (*s["pred_tracks"], pred, pred_cols)):
                for i, n in zip(ids, pixels):
                    col = columns.setdefault((sequence, i), len(columns))
                    target[col] = target.get(col, 0) + n
            for g, p, n in zip(*s["overlap"]):
                col = pair_cols.setdefault((gt_cols[(sequence, g)], pred_cols[(sequence, p)]),
                                           len(pair_cols))
                pairs[col] = pairs.get(col, 0) + n
        sparse.append((gt, pred, pairs))
        latencies.append(LatencyHistogram.of([r["latency_ms"] for r in records
                                              if r["latency_ms"] is not None]))
    dense = [np.zeros((len(blocks), len(cols))) for cols in (gt_cols, pred_cols, pair_cols)]
    for u, parts in enumerate(sparse):
        for array, part in zip(dense, parts):
            array[u, list(part)] = list(part.values())
    keys = np.array(sorted({k for h in latencies for k in h.bins}), np.int64)
    latency = np.zeros((len(blocks), len(keys)))
    for u, histogram in enumerate(latencies):
        for key, count in histogram.bins.items():
            latency[u, int(np.searchsorted(keys, key))] = count
    pair_index = np.array(list(pair_cols), np.int64).reshape(-1, 2)
    return Units([f"{sequence}@{records[0]['frame']}" for sequence, records in blocks],
                 vpq, confusion, counts, keys, latency, gt_size=dense[0], pred_size=dense[1],
                 overlap=dense[2], pair_gt=pair_index[:, 0], pair_pred=pair_index[:, 1])
