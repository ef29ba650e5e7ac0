"""What the dataset readers and writers on disk share: image files with clear errors, a
source of panoptic label maps indexed by (sequence, frame), a dataset of listed image
files, and the small sidecar file that vps_ros writers leave beside a dataset.

Readers never skip a frame silently: a missing or unreadable file, an image whose size
differs from its annotation, or an annotation without its image is a DataError that
names the file (and the frame).
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from ...errors import DataError
from ...types import ClassTable
from ..frames import VideoFrame
from . import png

SIDECAR = "vps_ros_dataset.json"


def read_rgb(path: Path, what: str = "image") -> np.ndarray:
    """An 8-bit colour image as RGB (H, W, 3)."""
    return cv2.cvtColor(png.read_bgr(path, what), cv2.COLOR_BGR2RGB)


def read_label_png(path: Path, what: str = "label PNG") -> np.ndarray:
    """A PNG as stored: (H, W) for single-channel 8/16-bit, (H, W, 4) RGBA for colour
    (alpha 255 where the file has none); see :mod:`.png` for the decoder."""
    return png.read_label(path, what)


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    _write(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_label_png(path: Path, data: np.ndarray) -> None:
    """A label map as PNG: RGB (H, W, 3) uint8 or single channel uint8/uint16."""
    _write(path, cv2.cvtColor(data, cv2.COLOR_RGB2BGR) if data.ndim == 3 else data)


def _write(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), data):
        raise DataError(f"{path}: could not write the image")


def read_json(path: Path, what: str = "JSON file") -> Any:
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, separators=(",", ":")))


def frame_index(stem: str, path: Path) -> int:
    """Frame number of a file named by its number (``000042.png``)."""
    if not stem.isdigit():
        raise DataError(f"{path}: expected a file named by its frame number, got {stem!r}")
    return int(stem)


class SequenceNumbers:
    """Four-digit numbers for sequences, as Cityscapes-VPS and KITTI-STEP name them:
    numeric ids below 10000 keep their number, others get the lowest free one."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def __call__(self, sequence: str) -> int:
        if sequence not in self.numbers:
            taken = set(self.numbers.values())
            number = int(sequence) if sequence.isdigit() and int(sequence) < 10000 else \
                next(n for n in range(10000) if n not in taken)
            if number in taken:
                raise DataError(f"sequence {sequence!r} would share number {number:04d} with "
                                f"another sequence")
            self.numbers[sequence] = number
        return self.numbers[sequence]


@dataclass(frozen=True)
class Sidecar:
    """What a vps_ros writer records beside a dataset that its format cannot hold."""

    classes: ClassTable
    frame_rate: float

    def write(self, root: Path) -> None:
        write_json(root / SIDECAR, {"classes": self.classes.to_dict(),
                                    "frame_rate": self.frame_rate})

    @classmethod
    def read(cls, root: Path) -> "Sidecar | None":
        path = root / SIDECAR
        if not path.is_file():
            return None
        data = read_json(path)
        try:
            return cls(ClassTable.from_dict(data["classes"], where=str(path)),
                       float(data["frame_rate"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: malformed ({exc!r}); expected classes and "
                            f"frame_rate") from None


def dataset_defaults(root: Path, builtin: str, frame_rate: float, classes: ClassTable | None,
                     rate: float | None) -> tuple[ClassTable, float]:
    """Class table and frame rate: given ones, else the sidecar's, else the format's."""
    sidecar = Sidecar.read(root)
    table = classes or (sidecar.classes if sidecar else ClassTable.builtin(builtin))
    return table, rate or (sidecar.frame_rate if sidecar else frame_rate)


class PanopticFiles(ABC):
    """Panoptic label maps of a dataset or of a set of predictions, one file per
    (sequence, frame): a ``types.PanopticSource`` that also answers for single frames.

    Maps come in the package's encoding: ``class * label_divisor + instance`` with
    contiguous class ids of ``classes``, crowd regions as their thing class with
    instance 0, void as ``classes.void_id * label_divisor``. Subclasses list their files
    in ``self.files`` and decode one in ``_load``; ``origin`` (the JSON file or folder the
    maps come from) is named in errors.
    """

    def __init__(self, classes: ClassTable, label_divisor: int, files: dict[tuple[str, int], Path],
                 origin: Path) -> None:
        self.classes = classes
        self.label_divisor = label_divisor
        self.files = files
        self.origin = origin
        self.void = classes.void_id * label_divisor

    def sequences(self) -> list[str]:
        return sorted({seq for seq, _ in self.files})

    def indices(self, sequence: str) -> list[int]:
        return sorted(index for seq, index in self.files if seq == sequence)

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self.files

    def path(self, sequence: str, index: int) -> Path:
        try:
            return self.files[(sequence, index)]
        except KeyError:
            known = ", ".join(self.sequences()) or "none"
            raise DataError(f"{self.origin}: no panoptic map for sequence {sequence!r} frame "
                            f"{index} (sequences: {known})") from None

    def frame(self, sequence: str, index: int) -> np.ndarray:
        """The map of one frame; DataError naming the file when it is missing or bad."""
        return self._load(sequence, index, self.path(sequence, index))

    def frames(self, sequence: str) -> Iterator[tuple[int, np.ndarray]]:
        for index in self.indices(sequence):
            yield index, self.frame(sequence, index)

    @abstractmethod
    def _load(self, sequence: str, index: int, path: Path) -> np.ndarray:
        """Decode the file of one frame into the package's panoptic encoding."""

    def _check_classes(self, class_map: np.ndarray, where: str) -> None:
        """DataError for class ids that are neither in the table nor void."""
        ids = present_values(class_map)
        bad = [int(c) for c in ids if not (0 <= c < len(self.classes) or c == self.classes.void_id)]
        if bad:
            raise DataError(f"{where}: unknown class id(s) {bad} (class table "
                            f"{self.classes.name!r} has ids 0..{len(self.classes) - 1}, "
                            f"void {self.classes.void_id})")


def present_values(values: np.ndarray) -> np.ndarray:
    """The distinct values of a non-negative integer map, sorted, by one histogram (a
    ``np.unique`` would sort every pixel)."""
    values = np.ravel(values)
    if values.size == 0:
        return values
    if values.min() < 0 or values.max() >= 1 << 24:
        return np.unique(values)
    return np.flatnonzero(np.bincount(values))


@dataclass(frozen=True)
class ImageEntry:
    sequence: str
    index: int
    path: Path


class FileDataset:
    """A VideoDataset over listed image files and a PanopticFiles for their annotations.

    Every annotation must belong to a listed image (else: an annotated frame whose image
    is missing), and an annotation's size must equal its image's.
    """

    def __init__(self, classes: ClassTable, label_divisor: int, frame_rate: float,
                 images: list[ImageEntry], annotations: PanopticFiles | None) -> None:
        self.classes = classes
        self.label_divisor = label_divisor
        self.frame_rate = frame_rate
        self.images = sorted(images, key=lambda e: (e.sequence, e.index))
        self.annotations = annotations
        self._entries: dict[tuple[str, int], ImageEntry] | None = None
        if annotations is not None:
            listed = {(e.sequence, e.index) for e in self.images}
            orphans = sorted(set(annotations.files) - listed)
            if orphans:
                seq, index = orphans[0]
                raise DataError(f"{annotations.files[orphans[0]]}: annotated frame {index} of "
                                f"sequence {seq!r} has no image ({len(orphans)} such frame(s))")

    @property
    def sequence_ids(self) -> list[str]:
        return sorted({e.sequence for e in self.images})

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[VideoFrame]:
        for entry in self.images:
            yield self._read(entry)

    def annotated_keys(self) -> list[tuple[str, int]]:
        """(sequence, index) of every frame with ground truth, in dataset order."""
        if self.annotations is None:
            return []
        return [(e.sequence, e.index) for e in self.images
                if (e.sequence, e.index) in self.annotations]

    def get(self, sequence: str, index: int) -> VideoFrame:
        """One frame by sequence and index (random access: decodes only this frame)."""
        if self._entries is None:
            self._entries = {(e.sequence, e.index): e for e in self.images}
        entry = self._entries.get((sequence, index))
        if entry is None:
            raise DataError(f"no frame {index} of sequence {sequence!r} in this dataset")
        return self._read(entry)

    def _read(self, entry: ImageEntry) -> VideoFrame:
        image = read_rgb(entry.path)
        panoptic = None
        key = (entry.sequence, entry.index)
        if self.annotations is not None and key in self.annotations:
            panoptic = self.annotations.frame(*key)
            if panoptic.shape != image.shape[:2]:
                raise DataError(
                    f"{entry.path}: image is {image.shape[1]}x{image.shape[0]} but its "
                    f"annotation {self.annotations.files[key]} is "
                    f"{panoptic.shape[1]}x{panoptic.shape[0]}")
        stamp = int(round(entry.index * 1e9 / self.frame_rate))
        return VideoFrame(entry.sequence, entry.index, stamp, image, panoptic)
