"""The metric core's entry points: stream frames in, get VPQ / STQ / PQ out.

Every caller (``vps-ros eval``, the bag replay, the trainer's validation PQ) goes
through :class:`SequenceEvaluator` or :func:`panoptic_quality`; both read each
frame's pixels once, into a :class:`~vps_ros.metrics.tables.PairTable`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ..errors import ConfigError, DataError
from ..types import ClassTable
from .labels import LabelSpace
from .stq import StqFrame, StqStats, StqStream
from .summary import image_result, video_result
from .tables import PairTable
from .vpq import VpqStats, VpqStream

# Window sizes in annotated frames. Cityscapes-VPS annotates every 5th frame, so its
# windows 1, 2, 3, 4 are the paper's k = 0, 5, 10, 15 (seed 001, section III-B).
WINDOW_PRESETS: dict[str, tuple[int, ...]] = {
    "cityscapes-vps": (1, 2, 3, 4),
    "kitti-step": (1, 2, 3, 4),
    "vipseg": (1, 2, 4, 6),
}


def check_windows(windows: Iterable[int]) -> tuple[int, ...]:
    """Distinct positive window sizes, sorted; ConfigError otherwise."""
    sizes = tuple(sorted(set(int(w) for w in windows)))
    if not sizes or sizes[0] < 1:
        raise ConfigError(f"window sizes must be positive numbers of frames, got {list(windows)}")
    return sizes


def frame_table(gt: np.ndarray, pred: np.ndarray, space: LabelSpace, where: str) -> PairTable:
    """Validate one frame's maps and build its pair table; errors name ``where``."""
    for name, array in (("ground truth", gt), ("prediction", pred)):
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
            raise DataError(f"{where}: {name} must be a 2-D integer panoptic map, got "
                            f"{array.dtype} of shape {array.shape}")
    if gt.shape != pred.shape:
        raise DataError(f"{where}: prediction is {pred.shape[1]}x{pred.shape[0]} pixels but "
                        f"ground truth is {gt.shape[1]}x{gt.shape[0]}")
    for name, array in (("ground truth", gt), ("prediction", pred)):
        if array.size and array.min() < 0:
            raise DataError(f"{where}: {name} has negative panoptic ids")
    table = PairTable.from_maps(gt, pred)
    for name, ids in (("ground truth", table.gt), ("prediction", table.pred)):
        unknown = np.unique(space.unknown_ids(ids))
        if unknown.size:
            raise DataError(
                f"{where}: {name} has ids of unknown classes {unknown[:5].tolist()} (class = "
                f"id // {space.label_divisor}; class table {space.classes.name!r} has classes "
                f"0..{space.num_classes - 1} and void {space.classes.void_id})")
    return table


@dataclass
class MetricStats:
    """Everything VPQ and STQ need, summed over sequences; merge to combine workers."""

    vpq: VpqStats
    stq: StqStats
    num_sequences: int = 0
    num_frames: int = 0

    @classmethod
    def zeros(cls, space: LabelSpace, windows: tuple[int, ...]) -> "MetricStats":
        return cls(VpqStats.zeros(windows, space.num_classes), StqStats.zeros(space.num_classes))

    def merge(self, other: "MetricStats") -> None:
        self.vpq.merge(other.vpq)
        self.stq.merge(other.stq)
        self.num_sequences += other.num_sequences
        self.num_frames += other.num_frames

    def state_dict(self) -> dict[str, Any]:
        """The statistics as plain lists and numbers (JSON), restored exactly by
        :meth:`from_state_dict`: JSON writes floats with ``repr``, which round-trips, so
        statistics saved by one process and merged by another give the same bits."""
        return {"windows": list(self.vpq.windows), "iou": self.vpq.iou.tolist(),
                "tp": self.vpq.tp.tolist(), "fp": self.vpq.fp.tolist(),
                "fn": self.vpq.fn.tolist(), "confusion": self.stq.confusion.tolist(),
                "aq_sum": float(self.stq.aq_sum), "num_tracks": int(self.stq.num_tracks),
                "num_sequences": self.num_sequences, "num_frames": self.num_frames}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "MetricStats":
        vpq = VpqStats(tuple(int(w) for w in state["windows"]),
                       np.asarray(state["iou"], np.float64).reshape(len(state["windows"]), -1),
                       *(np.asarray(state[k], np.int64).reshape(len(state["windows"]), -1)
                         for k in ("tp", "fp", "fn")))
        stq = StqStats(np.asarray(state["confusion"], np.int64), float(state["aq_sum"]),
                       int(state["num_tracks"]))
        return cls(vpq, stq, int(state["num_sequences"]), int(state["num_frames"]))

    def result(self, classes: ClassTable) -> dict[str, Any]:
        """The result dictionary of docs/architecture.md (``VPQ``, ``VPQ_windows``, ``STQ``, ...)."""
        result = video_result(self.vpq, self.stq, classes)
        result.update(num_sequences=self.num_sequences, num_frames=self.num_frames)
        return result


@dataclass(frozen=True)
class FrameStats:
    """One annotated frame's share of its sequence's statistics: the VPQ counts of the
    windows ending at it and its STQ parts. Summed over the sequence's frames they give
    the sequence's :class:`MetricStats` (AQ through the summed track sizes), so a
    sequence's frames can be resampled in blocks without going back to pixels."""

    vpq: VpqStats
    stq: StqFrame

    def state_dict(self) -> dict[str, Any]:
        """Plain lists (JSON): VPQ arrays (windows x classes), sparse confusion cells,
        track sizes and overlaps as [ids, pixels] / [gt ids, pred ids, pixels]."""
        s = self.stq
        return {"iou": self.vpq.iou.tolist(), "tp": self.vpq.tp.tolist(),
                "fp": self.vpq.fp.tolist(), "fn": self.vpq.fn.tolist(),
                "confusion": [s.confusion.gt.tolist(), s.confusion.pred.tolist(),
                              s.confusion.count.tolist()],
                "gt_tracks": [s.gt_size[0].tolist(), s.gt_size[1].tolist()],
                "pred_tracks": [s.pred_size[0].tolist(), s.pred_size[1].tolist()],
                "overlap": [s.overlap.gt.tolist(), s.overlap.pred.tolist(),
                            s.overlap.count.tolist()]}


class SequenceEvaluator:
    """VPQ and STQ of one sequence, fed its annotated frames in order.

    Memory holds the last ``max(windows)`` frame tables and the sequence's track
    sizes, never a frame's pixels after :meth:`add` returns.
    """

    def __init__(self, space: LabelSpace, windows: tuple[int, ...], name: str = "sequence"):
        self.space = space
        self.name = name
        self._vpq = VpqStream(space, check_windows(windows))
        self._stq = StqStream(space)
        self._frames = 0

    def add(self, gt: np.ndarray, pred: np.ndarray, frame: int | None = None) -> FrameStats:
        """Add the next annotated frame (``frame`` is its index, for error messages);
        returns its additive parts (see :class:`FrameStats`)."""
        where = f"sequence {self.name!r}, frame {self._frames if frame is None else frame}"
        table = frame_table(np.asarray(gt), np.asarray(pred), self.space, where)
        ending = self._vpq.add(table)
        parts = self._stq.add(table)
        self._frames += 1
        return FrameStats(ending, parts)

    def finish(self) -> MetricStats:
        return MetricStats(self._vpq.stats, self._stq.finish(), 1, self._frames)


def evaluate_sequences(sequences: Iterable[Iterable[tuple[np.ndarray, np.ndarray]]],
                       classes: ClassTable, label_divisor: int,
                       windows: Iterable[int]) -> dict[str, Any]:
    """VPQ and STQ of sequences given as iterables of ``(ground truth, prediction)``
    maps of their annotated frames (streamed: frames may come from a generator)."""
    space = LabelSpace(classes, label_divisor)
    windows = check_windows(windows)
    total = MetricStats.zeros(space, windows)
    for number, frames in enumerate(sequences):
        evaluator = SequenceEvaluator(space, windows, f"#{number}")
        for gt, pred in frames:
            evaluator.add(gt, pred)
        total.merge(evaluator.finish())
    return total.result(classes)


def panoptic_quality(pairs: Iterable[tuple[np.ndarray, np.ndarray]], classes: ClassTable,
                     label_divisor: int) -> dict[str, Any]:
    """Image panoptic quality (PQ, SQ, RQ) of ``(ground truth, prediction)`` map pairs.

    PQ is VPQ with windows of one frame, so it runs on the same tube matching.
    """
    space = LabelSpace(classes, label_divisor)
    stream = VpqStream(space, (1,))
    count = 0
    for count, (gt, pred) in enumerate(pairs, start=1):
        stream.add(frame_table(np.asarray(gt), np.asarray(pred), space, f"image {count - 1}"))
    result = image_result(stream.stats, classes)
    result["num_images"] = count
    return result
