"""Side-by-side frames of A and B for the drives that lost most.

A run's folder keeps statistics, not outputs, so each such drive is replayed again
offline, A's and B's pipelines in step over the same frames, with the settings each run
recorded (model, parameters file, classes, cameras). Replays are deterministic: the
statistics of the replay are checked against the run's, and the picture says when they
differ (the model or parameters file changed since). The frame drawn is the annotated
frame where B's errors exceed A's most: labelled pixels given the wrong class, plus
pixels of ground-truth tracks matched under another id than the one the track was first
matched with (an id switch keeps costing until the track gets its first id back).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import VpsRosError
from ..metrics import LabelSpace
from ..types import ClassTable
from .cameras import Camera, ReplayFrame, replay_frames
from .figures import titled_tiles
from .offline import OfflineEngine
from .outputs import ReplayOutput
from .runner import ReplayOptions, set_up_bag
from .scoring import ReplayScorer, TrackHistory

DRIVES_SHOWN = 3


@dataclass
class Worst:
    score: int = -1
    frame: ReplayFrame | None = None
    outputs: tuple[ReplayOutput | None, ReplayOutput | None] = (None, None)
    errors: tuple[int, int] = (0, 0)


class FrameErrors:
    """A run's error pixels per frame (see the module docstring), streamed in order."""

    def __init__(self, space: LabelSpace) -> None:
        self.space = space
        self.history: dict[str, TrackHistory] = {}
        self.first_id: dict[tuple[str, int], int] = {}

    def add(self, frame: ReplayFrame, output: ReplayOutput | None) -> int:
        space = self.space
        pred = output.panoptic if output is not None else np.full(
            frame.gt.shape, space.classes.void_id * space.label_divisor, np.int32)
        gt_class, pred_class = space.class_index(frame.gt), space.class_index(pred)
        errors = int(np.count_nonzero((gt_class != space.num_classes) & (gt_class != pred_class)))
        history = self.history.setdefault(frame.camera, TrackHistory())
        history.add(frame.index, frame.gt, pred, space)
        for gt_id, pred_id in history.matches[-1].items():
            if pred_id:
                first = self.first_id.setdefault((frame.camera, gt_id), pred_id)
                if pred_id != first:
                    errors += int(np.count_nonzero(frame.gt == gt_id))
        return errors


def _options(data: dict[str, Any], out: Path) -> ReplayOptions:
    s = data["settings"]
    return ReplayOptions(bag=Path(data["bag"]), cameras=[Camera(**c) for c in s["cameras"]],
                         out=out, params=Path(s["params"]), model=s.get("model") or "",
                         model_classes=s.get("model_classes") or "",
                         windows=tuple(s["windows"]),
                         classes=ClassTable.named(s["classes"]) if s.get("classes") else None,
                         video=False, progress=False)


def _states(name: str, scorer: ReplayScorer) -> dict[str, Any]:
    return {f"{name}/{camera}": stats.state_dict()
            for camera, stats in scorer.sequence_stats().items()}


def drive_frames(name: str, data_a: dict[str, Any], data_b: dict[str, Any], out: Path
                 ) -> tuple[Path | None, str]:
    """Replay one drive with A's and B's settings; (the picture, a note for the report)."""
    options = [_options(d, out) for d in (data_a, data_b)]
    setups = [set_up_bag(o, o.bag) for o in options]
    engines = [OfflineEngine(s.config, o.cameras) for s, o in zip(setups, options)]
    scorers = [s.scorer(o, e.classes) for s, o, e in zip(setups, options, engines)]
    space = scorers[0].space
    errors = [FrameErrors(space), FrameErrors(space)]
    worst = Worst()
    streams = [e.replay(replay_frames(o.bag, o.cameras)) for e, o in zip(engines, options)]
    for (frame, out_a), (_, out_b) in zip(*streams):
        scorers[0].add(frame, out_a)
        scorers[1].add(frame, out_b)
        if frame.gt is None:
            continue
        counts = (errors[0].add(frame, out_a), errors[1].add(frame, out_b))
        if counts[1] - counts[0] > worst.score:
            worst = Worst(counts[1] - counts[0], frame, (out_a, out_b), counts)
    same = [_states(name, scorer) == data["sequences"]
            for scorer, data in zip(scorers, (data_a, data_b))]
    note = "" if all(same) else (" (the replay did not reproduce run "
                                 + " and ".join(r for r, ok in zip("AB", same) if not ok)
                                 + "'s statistics: its model or parameters changed since)")
    if worst.frame is None:
        return None, f"{name}: no annotated frame{note}"
    frame = worst.frame
    image = titled_tiles(frame, [(worst.outputs[0], f"A ({worst.errors[0]} px wrong)"),
                                 (worst.outputs[1], f"B ({worst.errors[1]} px wrong)")],
                         space.classes, space.label_divisor)
    path = out / f"frames_{name}.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path, (f"{name}, camera {frame.camera} frame {frame.index}: B has "
                  f"{worst.errors[1] - worst.errors[0]} more wrong pixels than A "
                  f"(wrong class, or a track under another id than its first){note}")


def worst_drive_frames(drives_a: dict[str, dict[str, Any]], drives_b: dict[str, dict[str, Any]],
                       ranked: list[dict[str, Any]], out: Path) -> list[tuple[str, str]]:
    """(picture file name or "", note) for the (up to) three drives that lost most VPQ
    (negative deltas only); a drive whose bag or settings cannot be replayed is noted."""
    shown = []
    for row in [r for r in ranked if (r["metrics"]["VPQ"]["delta"] or 0) < 0][:DRIVES_SHOWN]:
        name = row["drive"]
        if "settings" not in drives_a[name] or "settings" not in drives_b[name]:
            shown.append(("", f"{name}: the runs do not record their settings; replay it "
                              "alone with --record to see its outputs"))
            continue
        try:
            path, note = drive_frames(name, drives_a[name], drives_b[name], out)
        except VpsRosError as exc:
            shown.append(("", f"{name}: not replayed again ({exc})"))
            continue
        shown.append((path.name if path else "", note))
    return shown
