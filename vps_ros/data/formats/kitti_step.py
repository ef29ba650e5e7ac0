"""KITTI-STEP (Weber et al., 2021) in the layout of its release (DeepLab2 instructions).

::

    ROOT/images/SPLIT/SSSS/FFFFFF.png          camera images
    ROOT/panoptic_maps/SPLIT/SSSS/FFFFFF.png   R = semantic id (255 void), 256 G + B = track id

Every frame of an annotated split has its map. Semantic ids are the 19 Cityscapes train
ids; only person and car carry track ids, other pixels (and untracked people or cars,
i.e. crowd) have track id 0. Predictions in the same encoding are read from a folder of
sequence folders.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError
from ...panoptic import panoptic_to_kitti_step
from ...types import ClassTable
from .files import (FileDataset, ImageEntry, PanopticFiles, SequenceNumbers, Sidecar,
                    dataset_defaults, frame_index, read_label_png, write_label_png, write_rgb)
from ..frames import VideoDataset

FRAME_RATE_HZ = 10.0


def _sequence_files(folder: Path, suffixes: tuple[str, ...]) -> dict[tuple[str, int], Path]:
    files = {}
    for sequence in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(sequence.iterdir()):
            if path.suffix.lower() in suffixes:
                files[(sequence.name, frame_index(path.stem, path))] = path
    return files


def find_split(folder: Path, split: str | None) -> str:
    if not folder.is_dir():
        raise DataError(f"{folder}: KITTI-STEP folder not found")
    if split is not None:
        if not (folder / split).is_dir():
            raise DataError(f"{folder / split}: split folder not found")
        return split
    splits = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if len(splits) != 1:
        raise DataError(f"{folder}: found splits {splits}; choose one with split=")
    return splits[0]


class KittiStepPanoptic(PanopticFiles):
    """Panoptic PNGs of a folder of sequence folders."""

    def __init__(self, folder: Path, classes: ClassTable, label_divisor: int) -> None:
        if not folder.is_dir():
            raise DataError(f"{folder}: folder of KITTI-STEP panoptic maps not found")
        super().__init__(classes, label_divisor, _sequence_files(folder, (".png",)), folder)

    def _load(self, sequence: str, index: int, path: Path) -> np.ndarray:
        where = f"{path} (sequence {sequence} frame {index})"
        png = read_label_png(path, "panoptic PNG")
        if png.ndim != 3:
            raise DataError(f"{where}: expected an RGB KITTI-STEP panoptic PNG, got one channel")
        semantic = png[..., 0].astype(np.int64)
        self._check_classes(semantic, where)
        instance = png[..., 1].astype(np.int64) * 256 + png[..., 2]
        if instance.max() >= self.label_divisor:
            raise DataError(f"{where}: track id {int(instance.max())} does not fit label_divisor "
                            f"{self.label_divisor}")
        panoptic = semantic * self.label_divisor + instance
        panoptic[semantic == self.classes.void_id] = self.void
        return panoptic.astype(np.int32)


def open_panoptic(path: Path, classes: ClassTable, label_divisor: int, split: str | None = None
                  ) -> KittiStepPanoptic:
    """A dataset root (``panoptic_maps/SPLIT``) or a folder of sequence folders."""
    path = Path(path)
    if (path / "panoptic_maps").is_dir():
        path = path / "panoptic_maps" / find_split(path / "panoptic_maps", split)
    return KittiStepPanoptic(path, classes, label_divisor)


def read(root: Path, split: str | None = None, classes: ClassTable | None = None,
         frame_rate: float | None = None, label_divisor: int = 1000) -> FileDataset:
    root = Path(root)
    split = find_split(root / "images", split)
    classes, frame_rate = dataset_defaults(root, "kitti-step", FRAME_RATE_HZ, classes, frame_rate)
    images = _sequence_files(root / "images" / split, (".png", ".jpg"))
    annotations = None
    maps = root / "panoptic_maps" / split
    if maps.is_dir():
        annotations = KittiStepPanoptic(maps, classes, label_divisor)
        missing = sorted(set(images) - set(annotations.files))
        if missing:
            raise DataError(f"{images[missing[0]]}: no panoptic map for this frame in {maps} "
                            f"(KITTI-STEP annotates every frame; {len(missing)} missing)")
    entries = [ImageEntry(seq, index, path) for (seq, index), path in images.items()]
    return FileDataset(classes, label_divisor, frame_rate, entries, annotations)


def write(dataset: VideoDataset, root: Path, split: str = "val") -> None:
    """Every frame's image and (when it has one) its panoptic map."""
    root = Path(root)
    numbers = SequenceNumbers()
    for frame in dataset:
        name = f"{numbers(frame.sequence):04d}/{frame.index:06d}.png"
        write_rgb(root / "images" / split / name, frame.image)
        if frame.panoptic is not None:
            classes = frame.panoptic // dataset.label_divisor
            panoptic = np.where(classes == dataset.classes.void_id,
                                dataset.classes.void_id * dataset.label_divisor, frame.panoptic)
            try:
                png = panoptic_to_kitti_step(panoptic, dataset.label_divisor)
            except ValueError as exc:
                raise DataError(f"sequence {frame.sequence} frame {frame.index}: {exc}") from None
            write_label_png(root / "panoptic_maps" / split / name, png)
    Sidecar(dataset.classes, float(getattr(dataset, "frame_rate", FRAME_RATE_HZ))).write(root)
