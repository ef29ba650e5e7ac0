"""Scores a replay as it streams: VPQ / STQ per camera and over all cameras (the
metric core of ``vps-ros eval``, each camera one sequence), latency, dropped frames,
and what happened to every ground-truth track's id (switches, recoveries after
occlusion) for the tracks timeline.

A frame the node never answered (dropped) is scored as an all-void prediction: for
the metrics nothing was detected in it, as for a robot that got no output.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..metrics import LabelSpace, MetricStats, SequenceEvaluator, check_windows
from ..metrics.tables import PairTable
from ..types import ClassTable
from .cameras import Camera, ReplayFrame
from .latency import latency_summary
from .outputs import ReplayOutput


@dataclass
class TrackEvent:
    frame: int
    gt_id: int
    pred_id: int
    kind: str            # "switch" or "recovery"


@dataclass
class TrackHistory:
    """Per annotated frame, the predicted id each visible ground-truth thing track
    matched (IoU > 0.5, same class; 0 when missed), and the id events.

    An id switch: a track matched another predicted id than the last one it matched.
    A recovery: a track absent from the ground truth for at least one annotated frame
    (occluded, out of view) that comes back under the id it had before.
    """

    frames: list[int] = field(default_factory=list)
    matches: list[dict[int, int]] = field(default_factory=list)
    events: list[TrackEvent] = field(default_factory=list)
    _last_id: dict[int, int] = field(default_factory=dict)
    _last_visible: dict[int, int] = field(default_factory=dict)

    def add(self, frame: int, gt: np.ndarray, pred: np.ndarray, space: LabelSpace) -> None:
        matched = _match_things(gt, pred, space)
        position = len(self.frames)
        for gt_id, pred_id in matched.items():
            gap = position - self._last_visible.get(gt_id, position - 1) > 1
            last = self._last_id.get(gt_id)
            if pred_id and last:
                if pred_id != last:
                    self.events.append(TrackEvent(frame, gt_id, pred_id, "switch"))
                elif gap:
                    self.events.append(TrackEvent(frame, gt_id, pred_id, "recovery"))
            if pred_id:
                self._last_id[gt_id] = pred_id
            self._last_visible[gt_id] = position
        self.frames.append(frame)
        self.matches.append(matched)

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e.kind == kind)


def _match_things(gt: np.ndarray, pred: np.ndarray, space: LabelSpace) -> dict[int, int]:
    """Ground-truth thing id -> the predicted id of the same class with IoU > 0.5 (0: none)."""
    table = PairTable.from_maps(gt, pred)
    gt_ids, g = np.unique(table.gt, return_inverse=True)
    pred_ids, p = np.unique(table.pred, return_inverse=True)
    gt_area = np.bincount(g, table.count, len(gt_ids))
    pred_area = np.bincount(p, table.count, len(pred_ids))
    gt_class, pred_class = space.class_index(gt_ids), space.class_index(pred_ids)
    things = space.is_thing[gt_class] & (space.instance(gt_ids) > 0)
    iou = table.count / (gt_area[g] + pred_area[p] - table.count)
    good = things[g] & (gt_class[g] == pred_class[p]) & (iou > 0.5)
    matched = {int(i): 0 for i in gt_ids[things]}
    matched.update({int(gt_ids[a]): int(pred_ids[b]) for a, b in zip(g[good], p[good])})
    return matched


@dataclass
class CameraScore:
    camera: Camera
    evaluator: SequenceEvaluator | None
    frames: int = 0
    annotated: int = 0
    dropped: int = 0
    latency_ms: list[float] = field(default_factory=list)
    history: TrackHistory = field(default_factory=TrackHistory)
    records: list[dict[str, Any]] = field(default_factory=list)   # kept frames, in order


class ReplayScorer:
    """Feed every replayed frame with its output (None: dropped), in stream order."""

    def __init__(self, cameras: list[Camera], classes: ClassTable, label_divisor: int,
                 windows: tuple[int, ...], keep_frames: bool = False) -> None:
        self.space = LabelSpace(classes, label_divisor)
        self.keep_frames = keep_frames
        self.windows = check_windows(windows)
        self.cameras = {c.name: CameraScore(c, SequenceEvaluator(self.space, self.windows, c.name)
                                            if c.gt_topic else None) for c in cameras}

    def add(self, frame: ReplayFrame, output: ReplayOutput | None) -> None:
        score = self.cameras[frame.camera]
        score.frames += 1
        if output is None:
            score.dropped += 1
        else:
            score.latency_ms.append(output.latency_ms)
        record = {"frame": frame.index, "latency_ms": None if output is None
                  else output.latency_ms, "stats": None, "switches": 0, "recoveries": 0}
        if frame.gt is not None and score.evaluator is not None:
            pred = output.panoptic if output is not None else np.full(
                frame.gt.shape, self.space.classes.void_id * self.space.label_divisor, np.int32)
            parts = score.evaluator.add(frame.gt, pred, frame.index)
            score.annotated += 1
            before = len(score.history.events)
            score.history.add(frame.index, frame.gt, pred, self.space)
            new_events = score.history.events[before:]
            record.update(stats=parts.state_dict() if self.keep_frames else None,
                          switches=sum(e.kind == "switch" for e in new_events),
                          recoveries=sum(e.kind == "recovery" for e in new_events))
        if self.keep_frames:
            score.records.append(record)

    def frame_records(self) -> dict[str, list[dict[str, Any]]]:
        """Per camera with annotated frames, every replayed frame in order (``keep_frames``):
        its index, latency (None: dropped), id switches and recoveries at it and, for an
        annotated frame, its :class:`~vps_ros.metrics.evaluate.FrameStats` state."""
        return {name: score.records for name, score in self.cameras.items()
                if score.evaluator is not None and score.annotated}

    def sequence_stats(self) -> dict[str, MetricStats]:
        """The metric core's statistics of each camera with annotated frames (one
        sequence each), in camera order: what a fleet run adds up over drives."""
        return {name: score.evaluator.finish() for name, score in self.cameras.items()
                if score.evaluator is not None and score.annotated}

    def results(self) -> dict[str, Any]:
        """``{"all": ..., "cameras": {name: ...}}``: each the metric result dictionary
        (None where no frame was annotated) plus frames, dropped frames, latency, id
        switches and recoveries."""
        total = MetricStats.zeros(self.space, self.windows)
        sequences = self.sequence_stats()
        cameras = {}
        for name, score in self.cameras.items():
            metrics = None
            if name in sequences:
                metrics = sequences[name].result(self.space.classes)
                total.merge(sequences[name])
            cameras[name] = {"metrics": metrics, **_counts([score]),
                             "metrics_note": None if metrics else _skipped([score])}
        evaluated = total.num_frames > 0
        every = {"metrics": total.result(self.space.classes) if evaluated else None,
                 **_counts(list(self.cameras.values())),
                 "metrics_note": None if evaluated else _skipped(list(self.cameras.values()))}
        return {"all": every, "cameras": cameras}


def _skipped(scores: list[CameraScore]) -> str:
    """Why no metric could be computed."""
    if all(s.evaluator is None for s in scores):
        return ("no ground truth: metrics skipped; the report holds outputs, latency and "
                "dropped frames only")
    if not sum(s.frames for s in scores):
        return "no frame was replayed: metrics skipped"
    return ("the ground-truth topic has no message with the header stamp of a replayed "
            "image: metrics skipped")


def _counts(scores: list[CameraScore]) -> dict[str, Any]:
    latency = [v for s in scores for v in s.latency_ms]
    return {"frames": sum(s.frames for s in scores),
            "annotated_frames": sum(s.annotated for s in scores),
            "dropped_frames": sum(s.dropped for s in scores),
            "latency_ms": latency_summary(latency),
            "id_switches": sum(s.history.count("switch") for s in scores),
            "recoveries": sum(s.history.count("recovery") for s in scores)}
