"""Training frames and the pairs of frames a batch is made of.

A training frame is an annotated frame in a compact form: the image and a map of
segment indices with one (class, track) row per segment. Readers with random access
(synthetic generator, Cityscapes-VPS, KITTI-STEP, VIPSeg: the same code path) are
streamed by :class:`ReaderFrames`, one frame at a time; iterate-only sources are held in
memory by :class:`FrameBank`. Batches are pairs of frames of one sequence, so the
association loss has positives (same track in both frames) and negatives (other tracks).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np
from tqdm import tqdm

from ..data.formats.datasets import open_dataset
from ..data.frames import RandomAccessDataset, VideoDataset, VideoFrame
from ..data.synthetic.dataset import SyntheticDataset
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
    """The dataset a config names."""
    if config.type == "synthetic":
        return SyntheticDataset(config.split, config.num_sequences, config.num_frames,
                                config.height, config.width,
                                first_sequence=config.first_sequence,
                                difficulty=config.difficulty)
    if not config.path:
        raise DataError(f"dataset type {config.type!r} needs a path")
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
    """Training frames held in memory, grouped by sequence, sampled in pairs: the source
    of datasets that can only be iterated (rosbag2 bags); readers with random access
    stream through :class:`ReaderFrames` instead.

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
        self.lengths = [len(seq) for seq in self.sequences]

    def __len__(self) -> int:
        return sum(self.lengths)

    def load(self, s: int, i: int) -> TrainFrame:
        return self.sequences[s][i]

    def sample_pairs(self, count: int, max_gap: int, rng: np.random.Generator
                     ) -> list[tuple[TrainFrame, TrainFrame]]:
        """``count`` pairs drawn by :func:`pick_pair`."""
        pairs = []
        for _ in range(count):
            (s, i), (_, j) = pick_pair(self.lengths, max_gap, rng)
            pairs.append((self.load(s, i), self.load(s, j)))
        return pairs


class ReaderFrames:
    """The annotated frames of a random-access reader, decoded when asked for.

    Holds only the (sequence, index) list, so memory does not grow with the size of the
    images or of the dataset beyond that list; each frame is read, split into segments
    and resized to the model's input ``size`` on every :meth:`load` (in a data-loader
    worker during training).
    """

    def __init__(self, dataset: RandomAccessDataset, classes: ClassTable, label_divisor: int,
                 size: tuple[int, int], limit: int = 0, desc: str = "train frames") -> None:
        keys = dataset.annotated_keys()
        if limit:
            keys = keys[:limit]
        if not keys:
            raise DataError(f"{desc}: the dataset has no annotated frames")
        self.dataset, self.classes, self.label_divisor = dataset, classes, label_divisor
        self.size = size
        self.keys: list[list[tuple[str, int]]] = []
        for key in keys:
            if not self.keys or self.keys[-1][0][0] != key[0]:
                self.keys.append([])
            self.keys[-1].append(key)
        self.lengths = [len(seq) for seq in self.keys]

    def __len__(self) -> int:
        return sum(self.lengths)

    def frame(self, s: int, i: int) -> VideoFrame:
        """The reader's frame ``i`` of the ``s``-th annotated sequence, as read."""
        return self.dataset.get(*self.keys[s][i])

    def load(self, s: int, i: int) -> TrainFrame:
        return resized(to_train_frame(self.frame(s, i), self.classes, self.label_divisor),
                       self.size)


TrainFrames = FrameBank | ReaderFrames  # or ConcatFrames of them


def train_frames(dataset: VideoDataset, size: tuple[int, int], limit: int = 0
                 ) -> TrainFrames:
    """A source of training frames: streamed from readers with random access, else (bags,
    iterate-only test videos) held in memory. The first frame is decoded at once, so a
    wrong layout or class table is reported before training starts."""
    if hasattr(dataset, "annotated_keys") and hasattr(dataset, "get"):
        frames: TrainFrames = ReaderFrames(dataset, dataset.classes, dataset.label_divisor,
                                           size, limit)
        frames.load(0, 0)
        return frames
    return FrameBank(annotated(dataset, limit, "train frames"), dataset.classes,
                     dataset.label_divisor, size)


def pick_pair(lengths: list[int], max_gap: int, rng: np.random.Generator,
              cumulative: np.ndarray | None = None, gaps: list[int] | None = None
              ) -> tuple[tuple[int, int], tuple[int, int]]:
    """A frame drawn uniformly over all frames of sequences of ``lengths`` (or in
    proportion to frame weights whose running sum is ``cumulative``), and one of the
    same sequence at most ``max_gap`` frames away (``gaps[s]`` for sequence s where
    given; itself only in a one-frame sequence): ((sequence, frame), (sequence, partner))."""
    if cumulative is None:
        pick = int(rng.integers(0, sum(lengths)))
    else:
        pick = min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], "right")),
                   len(cumulative) - 1)
    s = 0
    while pick >= lengths[s]:
        pick -= lengths[s]
        s += 1
    length = lengths[s]
    gap = gaps[s] if gaps is not None and gaps[s] else max_gap
    partners = [j for j in range(max(0, pick - gap), min(length, pick + gap + 1))
                if j != pick] or [pick]
    return (s, pick), (s, partners[int(rng.integers(len(partners)))])


class ConcatFrames:
    """Several sources of training frames as one: their sequences one after another,
    each with the pair gap of its source (0: the augment config's)."""

    def __init__(self, sources: list[TrainFrames], gaps: list[int]) -> None:
        self.sources = sources
        self.classes = sources[0].classes
        self.lengths = [n for source in sources for n in source.lengths]
        self.gaps = [gap for source, gap in zip(sources, gaps) for _ in source.lengths]
        self._where = [(k, s) for k, source in enumerate(sources)
                       for s in range(len(source.lengths))]

    def __len__(self) -> int:
        return sum(self.lengths)

    def load(self, s: int, i: int) -> TrainFrame:
        k, local = self._where[s]
        return self.sources[k].load(local, i)
