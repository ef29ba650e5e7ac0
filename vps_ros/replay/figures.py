"""The report's pictures: ground truth beside prediction (contact sheet, overlay video)
and the tracks timeline. All colours and boxes come from vps_ros.palette / visualize."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from ..palette import instance_color
from ..types import ClassTable, TrackedObject
from ..visualize import overlay
from .cameras import ReplayFrame
from .outputs import ReplayOutput
from .scoring import TrackHistory

SHEET_ROWS = 6
TILE_WIDTH = 384
TILE_MAX_HEIGHT = 4 * TILE_WIDTH   # a tall thin camera: a tile of bounded size
VIDEO_FPS = 10.0


def gt_objects(gt: np.ndarray, classes: ClassTable, label_divisor: int) -> list[TrackedObject]:
    """The ground truth's things as objects (instance id, box), for drawing ids."""
    values, inverse = np.unique(gt, return_inverse=True)
    inverse = inverse.reshape(gt.shape)
    areas = np.bincount(inverse.ravel(), minlength=len(values))
    objects = []
    for k, found in enumerate(ndimage.find_objects(inverse + 1)):
        class_id, instance = divmod(int(values[k]), label_divisor)
        if found is None or instance == 0 or not 0 <= class_id < len(classes) \
                or not classes[class_id].is_thing:
            continue
        rows, cols = found
        objects.append(TrackedObject(instance, class_id, True, 1.0, int(areas[k]),
                                     (cols.start, rows.start, cols.stop, rows.stop)))
    return objects


def side_by_side(frame: ReplayFrame, output: ReplayOutput | None, classes: ClassTable,
                 label_divisor: int) -> np.ndarray:
    """RGB: ground truth (or the bare image) left, prediction right, each titled, with
    the ids of the things seen in the frame (memory-only objects are left out here)."""
    return titled_tiles(frame, [(output, "prediction")], classes, label_divisor)


def titled_tiles(frame: ReplayFrame, outputs: list[tuple[ReplayOutput | None, str]],
                 classes: ClassTable, label_divisor: int) -> np.ndarray:
    """RGB: ground truth (or the bare image), then one tile per output (``None``:
    dropped), each titled, with the ids of the things seen in the frame."""
    void = np.full(frame.image.shape[:2], classes.void_id * label_divisor, np.int32)
    left = frame.image.copy() if frame.gt is None else overlay(
        frame.image, frame.gt, classes, gt_objects(frame.gt, classes, label_divisor),
        label_divisor)
    panels = [(left, "ground truth" if frame.gt is not None else "image (no GT)")]
    for output, title in outputs:
        seen = [o for o in output.objects if o.frames_since_seen == 0] if output else []
        panels.append((overlay(frame.image, output.panoptic if output else void, classes,
                               seen, label_divisor),
                       title if output else f"{title}: DROPPED"))
    tiles = []
    for tile, title in panels:
        scale = min(TILE_WIDTH / tile.shape[1], TILE_MAX_HEIGHT / tile.shape[0])
        tile = cv2.resize(tile, (max(1, round(tile.shape[1] * scale)),
                                 max(1, round(tile.shape[0] * scale))),
                          interpolation=cv2.INTER_NEAREST)
        tile = cv2.copyMakeBorder(tile, 18, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        cv2.putText(tile, f"{frame.camera} #{frame.index} {title}", (4, 13),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    return np.hstack(tiles)


@dataclass
class FigureCollector:
    """Keeps what the pictures need while the replay streams: a few chosen frames for
    the contact sheet, each camera's overlay video, predicted ids per frame."""

    out: Path
    classes: ClassTable
    label_divisor: int
    chosen: dict[str, set[int]]                 # camera -> frame indices for the sheet
    video: bool = True
    sheet: list[np.ndarray] = field(default_factory=list)
    predicted_ids: dict[str, list[tuple[int, list[int]]]] = field(default_factory=dict)
    videos: dict[str, Path] = field(default_factory=dict)
    _writers: dict[str, cv2.VideoWriter] = field(default_factory=dict)

    def add(self, frame: ReplayFrame, output: ReplayOutput | None) -> None:
        ids = [o.track_id for o in (output.objects if output else ())
               if o.is_thing and o.frames_since_seen == 0]
        self.predicted_ids.setdefault(frame.camera, []).append((frame.index, ids))
        wanted = frame.index in self.chosen.get(frame.camera, ())
        if not wanted and not self.video:
            return
        pair = side_by_side(frame, output, self.classes, self.label_divisor)
        if wanted:
            self.sheet.append(pair)
        if self.video:
            self._write_video(frame.camera, pair)

    def _write_video(self, camera: str, pair: np.ndarray) -> None:
        writer = self._writers.get(camera)
        if writer is None:
            name = "overlay.mp4" if not self._writers else f"overlay_{camera}.mp4"
            path = self.out / name
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS,
                                     (pair.shape[1], pair.shape[0]))
            if not writer.isOpened():
                self.video = False
                return
            self._writers[camera], self.videos[camera] = writer, path
        writer.write(cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))

    def finish(self) -> list[Path]:
        """Close the videos; returns their paths."""
        for writer in self._writers.values():
            writer.release()
        return [p for p in self.videos.values() if p.is_file() and p.stat().st_size > 0]

    def contact_sheet(self, path: Path) -> Path | None:
        if not self.sheet:
            return None
        width = max(t.shape[1] for t in self.sheet)
        rows = [cv2.copyMakeBorder(t, 0, 0, 0, width - t.shape[1], cv2.BORDER_CONSTANT,
                                   value=(255, 255, 255)) for t in self.sheet]
        cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
        return path


def choose_frames(counts: dict[str, int], rows: int = SHEET_ROWS) -> dict[str, set[int]]:
    """Evenly spaced frame indices of every camera, ``rows`` in all."""
    per_camera = max(1, rows // max(1, len(counts)))
    return {camera: set(np.linspace(0, n - 1, min(per_camera, n)).round().astype(int).tolist())
            for camera, n in counts.items() if n > 0}


def tracks_timeline(path: Path, histories: dict[str, TrackHistory],
                    predicted_ids: dict[str, list[tuple[int, list[int]]]],
                    classes: ClassTable, label_divisor: int) -> Path:
    """One panel per camera. With ground truth: a row per ground-truth thing track,
    coloured by the predicted id it matched (number at each change, grey where
    missed), red crosses at id switches, green circles at recoveries after occlusion.
    Without: a row per predicted id over the frames it was seen."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(predicted_ids)
    fig, axes = plt.subplots(len(names), 1, squeeze=False,
                             figsize=(11, 1.2 + 0.3 * max(8, _rows(histories, predicted_ids))))
    for ax, name in zip(axes[:, 0], names):
        history = histories.get(name)
        if history is not None and history.frames:
            _gt_panel(ax, history, classes, label_divisor)
        else:
            _pred_panel(ax, predicted_ids[name])
        ax.set_title(f"camera {name}")
        ax.set_xlabel("frame")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _rows(histories: dict[str, TrackHistory], predicted: dict) -> int:
    counts = [len({g for m in h.matches for g in m}) for h in histories.values()]
    counts += [len({i for _, ids in frames for i in ids}) for frames in predicted.values()]
    return max(counts, default=1)


def _colour(classes: ClassTable, panoptic_id: int, label_divisor: int) -> np.ndarray:
    class_id, instance = divmod(int(panoptic_id), label_divisor)
    base = classes[class_id].color if 0 <= class_id < len(classes) else (0, 0, 0)
    return instance_color(base, instance) / 255.0


def _gt_panel(ax, history: TrackHistory, classes: ClassTable, label_divisor: int) -> None:
    tracks = list(dict.fromkeys(g for m in history.matches for g in m))
    row = {g: k for k, g in enumerate(tracks)}
    for gt_id in tracks:
        runs = []
        for frame, matched in zip(history.frames, history.matches):
            if gt_id not in matched:
                continue
            pred = matched[gt_id]
            if runs and runs[-1][2] == pred and runs[-1][1] == frame - 1:
                runs[-1][1] = frame
            else:
                runs.append([frame, frame, pred])
        for start, end, pred in runs:
            colour = _colour(classes, pred, label_divisor) if pred else (0.8, 0.8, 0.8)
            height = 0.6 if pred else 0.2
            ax.broken_barh([(start - 0.45, end - start + 0.9)], (row[gt_id] - height / 2, height),
                           color=colour)
            if pred:
                dark = float(np.dot(colour, (0.299, 0.587, 0.114))) < 0.5
                ax.text(start, row[gt_id], str(pred % label_divisor), va="center", ha="left",
                        fontsize=7, color="white" if dark else "black")
    for kind, marker, colour in (("switch", "x", "red"), ("recovery", "o", "green")):
        events = [e for e in history.events if e.kind == kind]
        if events:
            ax.scatter([e.frame for e in events], [row[e.gt_id] for e in events], marker=marker,
                       color=colour, s=60, zorder=3, facecolors="none" if marker == "o" else None,
                       label=f"id {kind} ({len(events)})")
    ax.set_yticks(range(len(tracks)))
    ax.set_yticklabels([f"{classes[g // label_divisor].name} {g % label_divisor}"
                        for g in tracks], fontsize=7)
    ax.set_ylabel("ground-truth track")
    handles = ax.get_legend_handles_labels()[0]
    if handles:
        ax.legend(loc="upper right", fontsize=7)


def _pred_panel(ax, frames: list[tuple[int, list[int]]]) -> None:
    ids = sorted({i for _, f in frames for i in f})
    row = {i: k for k, i in enumerate(ids)}
    xs = [index for index, f in frames for _ in f]
    ys = [row[i] for _, f in frames for i in f]
    ax.scatter(xs, ys, marker="s", s=12)
    ax.set_yticks(range(len(ids)))
    ax.set_yticklabels([str(i) for i in ids], fontsize=7)
    ax.set_ylabel("predicted track id (no ground truth)")
