"""VIPSeg (Miao et al., CVPR 2022) in its release layout.

::

    ROOT/imgs/VIDEO/FRAME.jpg         frames (``images/`` in the 720p conversion)
    ROOT/panomasks/VIDEO/FRAME.png    one-channel label PNGs (absent for the test split)
    ROOT/train.txt, val.txt, test.txt the videos of each split, one name per line

A panomask value v is 0 for void, the category id + 1 for stuff (v < 125), and
(category id + 1) * 100 + k for the k-th instance of a thing (k from 0). The reader maps
the k-th instance to track id k + 1 and a thing category stored without an instance to
that thing's crowd region (instance 0). The COCO video conversion of the release
(``panoptic_gt_VIPSeg_SPLIT.json`` with ``panomasksRGB/``) and predictions in that form
(``pred.json`` with ``pan_pred/``) are read by ``open_panoptic`` too.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...types import ClassTable
from . import coco_panoptic as coco
from .files import (FileDataset, ImageEntry, PanopticFiles, dataset_defaults, frame_index,
                    read_json, read_label_png)

FRAME_RATE_HZ = 10.0           # VIPSeg states none; frames are treated as 10 Hz
_THING_BASE = 125


def _videos(root: Path, split: str | None) -> list[str] | None:
    if split is None:
        return None
    listing = root / f"{split}.txt"
    if not listing.is_file():
        raise DataError(f"{listing}: VIPSeg split list not found")
    return [line.strip() for line in listing.read_text().splitlines() if line.strip()]


def _files(folder: Path, videos: list[str] | None, suffixes: tuple[str, ...]
           ) -> dict[tuple[str, int], Path]:
    files = {}
    names = videos if videos is not None else sorted(p.name for p in folder.iterdir() if p.is_dir())
    for video in names:
        directory = folder / video
        if not directory.is_dir():
            raise DataError(f"{directory}: video folder not found")
        for path in sorted(directory.iterdir()):
            if path.suffix.lower() in suffixes:
                files[(video, frame_index(path.stem, path))] = path
    return files


class VipsegPanoptic(PanopticFiles):
    """The release's one-channel panomasks."""

    def __init__(self, folder: Path, classes: ClassTable, label_divisor: int,
                 videos: list[str] | None = None) -> None:
        if not folder.is_dir():
            raise DataError(f"{folder}: VIPSeg panomasks folder not found")
        if label_divisor <= 100:
            raise DataError(f"label_divisor {label_divisor} cannot hold VIPSeg's 100 instances")
        super().__init__(classes, label_divisor, _files(folder, videos, (".png",)), folder)

    def _load(self, sequence: str, index: int, path: Path) -> np.ndarray:
        where = f"{path} (video {sequence} frame {index})"
        mask = read_label_png(path, "panomask")
        if mask.ndim != 2:
            raise DataError(f"{where}: expected a one-channel panomask, got {mask.shape[2]} "
                            f"channels")
        value = mask.astype(np.int64)
        thing = value >= _THING_BASE
        semantic = np.where(thing, value // 100, value) - 1
        self._check_classes(np.where(value == 0, self.classes.void_id, semantic), where)
        thing_class = self.classes.is_thing_lut[np.clip(semantic, 0, len(self.classes) - 1)]
        instance = np.where(thing & thing_class, value % 100 + 1, 0)
        panoptic = semantic * self.label_divisor + instance
        panoptic[value == 0] = self.void
        return panoptic.astype(np.int32)


class VipsegCocoPanoptic(PanopticFiles):
    """The COCO video form: ``videos[]``/``annotations[]`` per video plus RGB PNGs."""

    def __init__(self, json_path: Path, png_dir: Path, classes: ClassTable, label_divisor: int
                 ) -> None:
        data = read_json(json_path, "VIPSeg panoptic JSON")
        if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
            raise DataError(f"{json_path}: expected annotations[] with one entry per video")
        if "categories" in data:
            coco.check_categories(data["categories"], classes, str(json_path))
        files, self.segments, self.instances = {}, {}, {}
        for video_entry in data["annotations"]:
            try:
                video, frames = str(video_entry["video_id"]), video_entry["annotations"]
            except (KeyError, TypeError):
                raise DataError(f"{json_path}: every video needs video_id and "
                                f"annotations[]") from None
            ordered = []
            for entry in frames:
                name = entry.get("file_name") or f"{entry['image_id']}.png"
                path = png_dir / video / name
                key = (video, frame_index(Path(name).stem, path))
                files[key] = path
                self.segments[key] = entry.get("segments_info", [])
                where = f"{path} (video {video} frame {key[1]})"
                ordered.append((key[1], where, self.segments[key]))
            ordered.sort(key=lambda item: item[0])
            self.instances[video] = coco.video_instances(((w, s) for _, w, s in ordered), classes,
                                                         label_divisor)
        super().__init__(classes, label_divisor, files, json_path)

    def _load(self, sequence: str, index: int, path: Path) -> np.ndarray:
        where = f"{path} (video {sequence} frame {index})"
        return coco.decode(read_label_png(path, "panoptic PNG"), self.segments[(sequence, index)],
                           self.instances[sequence], self.classes, self.label_divisor, where)


def open_panoptic(path: Path, classes: ClassTable, label_divisor: int, split: str | None = None,
                  png_dir: Path | None = None) -> PanopticFiles:
    """A dataset root (its ``panomasks/``), a COCO-form JSON, or a predictions folder with
    ``pred.json`` and ``pan_pred/``."""
    path = Path(path)
    if path.is_dir() and (path / "pred.json").is_file():
        path = path / "pred.json"
    if path.is_dir():
        return VipsegPanoptic(path / "panomasks", classes, label_divisor, _videos(path, split))
    if png_dir is None:
        png_dir = path.parent / ("pan_pred" if path.name == "pred.json" else "panomasksRGB")
    return VipsegCocoPanoptic(path, Path(png_dir), classes, label_divisor)


def read(root: Path, split: str | None = None, classes: ClassTable | None = None,
         frame_rate: float | None = None, label_divisor: int = 1000) -> FileDataset:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: VIPSeg folder not found")
    classes, frame_rate = dataset_defaults(root, "vipseg", FRAME_RATE_HZ, classes, frame_rate)
    videos = _videos(root, split)
    folder = root / "imgs" if (root / "imgs").is_dir() else root / "images"
    if not folder.is_dir():
        raise DataError(f"{root}: no imgs/ (or images/) folder of VIPSeg frames")
    images = _files(folder, videos, (".jpg", ".jpeg", ".png"))
    annotations = None
    if (root / "panomasks").is_dir():
        annotated = {p.name for p in (root / "panomasks").iterdir() if p.is_dir()}
        wanted = sorted({seq for seq, _ in images} & annotated)
        if wanted:
            annotations = VipsegPanoptic(root / "panomasks", classes, label_divisor, wanted)
            per_video = defaultdict(set)
            for seq, index in annotations.files:
                per_video[seq].add(index)
            missing = sorted(k for k in images if k[0] in per_video and k[1] not in per_video[k[0]])
            if missing:
                raise DataError(f"{images[missing[0]]}: no panomask for this frame "
                                f"({len(missing)} frame(s) of annotated videos lack one)")
    entries = [ImageEntry(seq, index, path) for (seq, index), path in images.items()]
    return FileDataset(classes, label_divisor, frame_rate, entries, annotations)
