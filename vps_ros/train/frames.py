"""Training frames held in memory, and the pairs of frames a batch is made of.

The trainer reads its dataset once (synthetic generator or real-dataset reader, the
same code path) and keeps every annotated frame in a compact form: the image and a
map of segment indices with one (class, track) row per segment. Batches are pairs of
frames of one sequence, so the association loss has positives (same track in both
frames) and negatives (other tracks).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np
from tqdm import tqdm

from ..data.frames import VideoDataset, VideoFrame
from ..errors import DataError
from ..model.resizing import resize_image
from ..types import ClassTable
from .config import DatasetConfig

NO_TRACK = -1


@dataclass
class TrainFrame:
    """One annotated frame: ``ids[y, x]`` indexes ``classes``/``tracks`` (-1 = void).

    ``tracks`` holds a thing's panoptic id (unique within its sequence) and
    :data:`NO_TRACK` for stuff.
    """

    image: np.ndarray      # (H, W, 3) uint8 RGB
    ids: np.ndarray        # (H, W) int16
    classes: np.ndarray    # (G,) int64
    tracks: np.ndarray     # (G,) int64


def to_train_frame(frame: VideoFrame, classes: ClassTable, label_divisor: int) -> TrainFrame:
    """Split a panoptic map into segments; void and crowd (thing, instance 0) are void."""
    if frame.panoptic.shape != frame.image.shape[:2]:
        raise DataError(f"sequence {frame.sequence} frame {frame.index}: panoptic map "
                        f"{frame.panoptic.shape} and image {frame.image.shape[:2]} differ in size")
    values, inverse = np.unique(frame.panoptic, return_inverse=True)
    class_ids, instance_ids = values // label_divisor, values % label_divisor
    void = class_ids == classes.void_id
    unknown = sorted(set(class_ids[~void & (class_ids >= len(classes))].tolist()))
    if unknown:
        raise DataError(f"sequence {frame.sequence} frame {frame.index}: class ids {unknown} "
                        f"are not in class table {classes.name!r}")
    is_thing = classes.is_thing_lut[np.where(void, 0, class_ids)]
    void |= is_thing & (instance_ids == 0)
    keep = np.flatnonzero(~void)
    lut = np.full(len(values), -1, np.int16)
    lut[keep] = np.arange(len(keep))
    tracks = np.where(is_thing, values, NO_TRACK)
    return TrainFrame(frame.image, lut[inverse].reshape(frame.panoptic.shape),
                      class_ids[keep].astype(np.int64), tracks[keep].astype(np.int64))


def resized(frame: TrainFrame, size: tuple[int, int]) -> TrainFrame:
    """``frame`` at ``size`` = (height, width), the way the segmenter resizes images."""
    if frame.ids.shape == tuple(size):
        return frame
    return TrainFrame(resize_image(frame.image, size),
                      cv2.resize(frame.ids, (size[1], size[0]), interpolation=cv2.INTER_NEAREST),
                      frame.classes, frame.tracks)


def open_frames(config: DatasetConfig) -> VideoDataset:
    """The dataset a config names; the synthetic generator is imported only when used."""
    if config.type == "synthetic":
        from ..data.synthetic import SyntheticDataset
        return SyntheticDataset(config.split, config.num_sequences, config.num_frames,
                                config.height, config.width)
    if not config.path:
        raise DataError(f"dataset type {config.type!r} needs a path")
    from ..data.datasets import open_dataset
    if config.type == "rosbag2":
        return open_dataset(config.type, config.path, image_topic=config.image_topic,
                            gt_topic=config.gt_topic)
    return open_dataset(config.type, config.path, split=config.split)


def annotated(dataset: Iterable[VideoFrame], limit: int = 0, desc: str = "frames"
              ) -> list[VideoFrame]:
    """The annotated frames of a dataset (at most ``limit`` if > 0), with progress."""
    frames = []
    for frame in tqdm(dataset, desc=desc, unit="frame", leave=False):
        if frame.panoptic is not None:
            frames.append(frame)
            if limit and len(frames) >= limit:
                break
    if not frames:
        raise DataError(f"{desc}: the dataset has no annotated frames")
    return frames


class FrameBank:
    """Training frames grouped by sequence, sampled in pairs.

    Frames are stored at the model's input ``size``, as the segmenter resizes every
    image to it: augmentation then rescales around the scale the model will see.
    """

    def __init__(self, frames: list[VideoFrame], classes: ClassTable, label_divisor: int,
                 size: tuple[int, int]) -> None:
        self.classes = classes
        self.sequences: list[list[TrainFrame]] = []
        last = None
        for frame in frames:
            if frame.sequence != last:
                self.sequences.append([])
                last = frame.sequence
            self.sequences[-1].append(resized(to_train_frame(frame, classes, label_divisor),
                                              size))
        self._index = [(s, i) for s, seq in enumerate(self.sequences) for i in range(len(seq))]

    def __len__(self) -> int:
        return len(self._index)

    def sample_pairs(self, count: int, max_gap: int, rng: np.random.Generator
                     ) -> list[tuple[TrainFrame, TrainFrame]]:
        """``count`` pairs: a frame drawn uniformly, and one of the same sequence at most
        ``max_gap`` frames away (itself only in a one-frame sequence)."""
        pairs = []
        for pick in rng.integers(0, len(self._index), count):
            s, i = self._index[pick]
            sequence = self.sequences[s]
            partners = [j for j in range(max(0, i - max_gap), min(len(sequence), i + max_gap + 1))
                        if j != i] or [i]
            pairs.append((sequence[i], sequence[partners[rng.integers(len(partners))]]))
        return pairs
