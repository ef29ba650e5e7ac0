"""Procedural driving-scene videos with exact panoptic ground truth (``vps-ros synth``).

A forward-facing car camera drives down a street: road with lane marks, sidewalks,
buildings, tree lines and street trees, grass, sky (stuff); cars, trucks, pedestrians
and cyclists (things) on plausible paths, with parked cars, oncoming traffic and crossing
pedestrians. What makes it hard for a tracker: things hide each other and are hidden by
stuff (a designed event hides a thing completely for a chosen number of frames before it
is seen again), several instances look exactly alike, things enter and leave the frame,
the light changes, and there is sensor noise and mild blur on textured surfaces.

Every frame is a pure function of (split, sequence, frame index, size), so iteration and
random access give the same bytes. Instance ids are track ids: a track keeps its id for
the whole sequence, through occlusions. Things whose visible part is smaller than
``min_visible_area`` pixels in a frame are labelled void there (see SyntheticDataset).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ...errors import ConfigError
from ...types import ClassTable
from ..frames import VideoFrame
from .render import THING_CODE, Renderer
from .scene import FRAME_RATE_HZ, KIND_CLASS, Camera, Difficulty, Scene, plan_scene
from .textures import BUILDING_VARIANTS

LABEL_DIVISOR = 1000
SPLIT_SEED_BASE = {"train": 0, "val": 1_000_000, "test": 2_000_000, "occlusion": 3_000_000}
SEEDS_PER_SPLIT = 1_000_000
_STANDARD = Difficulty(event_probability=0.85, hidden_frames=(8, 20), twin_probability=0.5,
                       lookalike_probability=0.5, density=1.0)
_LONG_OCCLUSION = Difficulty(event_probability=1.0, hidden_frames=(20, 30), twin_probability=1.0,
                             lookalike_probability=0.7, density=1.0)
DIFFICULTY = {"train": _STANDARD, "val": _STANDARD, "test": _STANDARD,
              "occlusion": _LONG_OCCLUSION}
MIN_OCCLUSION_FRAMES = 40
REFERENCE_AREA = 256 * 512
REFERENCE_MIN_VISIBLE = 64


@dataclass
class SequenceMeta:
    """Track facts of one generated sequence, for ``vps-ros synth stats``.

    ``visible[t, k]`` counts the pixels labelled with track ``track_ids[k]`` in frame t
    (0 when hidden or voided as too small); ``amodal[t, k]`` the pixels it would cover
    inside the image if nothing were in front of it.
    """

    sequence: str
    seed: int
    event: str
    min_visible_area: int
    track_ids: np.ndarray       # (K,)
    class_ids: np.ndarray       # (K,)
    groups: np.ndarray          # (K,) look-alike group, -1 for none
    visible: np.ndarray         # (T, K) int
    amodal: np.ndarray          # (T, K) int

    @property
    def occlusion(self) -> np.ndarray:
        """(T, K) share of each track hidden in each frame (1 - visible / amodal area);
        NaN where the track is not in view (amodal area below ``min_visible_area``)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            share = 1.0 - self.visible / self.amodal
        return np.where(self.amodal >= self.min_visible_area, share, np.nan)

    @property
    def lookalike_groups(self) -> list[list[int]]:
        """Track ids of each group of identical-looking things."""
        ids = np.unique(self.groups[self.groups >= 0])
        return [self.track_ids[self.groups == g].tolist() for g in ids]

    def to_dict(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "seed": self.seed, "event": self.event,
                "min_visible_area": self.min_visible_area,
                "track_ids": self.track_ids.tolist(), "class_ids": self.class_ids.tolist(),
                "groups": self.groups.tolist(), "visible": self.visible.tolist(),
                "amodal": self.amodal.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SequenceMeta":
        k = len(data["track_ids"])
        return cls(str(data["sequence"]), int(data["seed"]), str(data["event"]),
                   int(data["min_visible_area"]), np.asarray(data["track_ids"], np.int64),
                   np.asarray(data["class_ids"], np.int64), np.asarray(data["groups"], np.int64),
                   np.asarray(data["visible"], np.int64).reshape(-1, k),
                   np.asarray(data["amodal"], np.int64).reshape(-1, k))


class SyntheticSequence:
    """One generated drive. Iterate for its frames; ``frame(t)`` renders any single frame."""

    def __init__(self, sequence: str, scene: Scene, classes: ClassTable, min_visible_area: int
                 ) -> None:
        self.sequence = sequence
        self.scene = scene
        self.min_visible_area = min_visible_area
        self._renderer = Renderer(scene, {c.name: c.id for c in classes}, min_visible_area)
        things = [b for b in scene.bodies if b.is_thing]
        self.track_ids = np.array([b.track_id for b in things], np.int64)
        self.class_ids = np.array([classes.id_of(KIND_CLASS[b.kind]) for b in things], np.int64)
        self.groups = np.array([b.group for b in things], np.int64)
        size = THING_CODE + (int(self.track_ids.max()) + 1 if len(things) else 0)
        lut = np.arange(size, dtype=np.int64) * LABEL_DIVISOR
        lut[THING_CODE:] = classes.void_id * LABEL_DIVISOR
        lut[THING_CODE + self.track_ids] = self.class_ids * LABEL_DIVISOR + self.track_ids
        self._lut = lut
        self._void = classes.void_id * LABEL_DIVISOR
        n = scene.num_frames
        self._visible = np.zeros((n, len(things)), np.int64)
        self._amodal = np.zeros((n, len(things)), np.int64)
        self._done = np.zeros(n, bool)
        self._column = {int(tid): k for k, tid in enumerate(self.track_ids)}

    def __len__(self) -> int:
        return self.scene.num_frames

    def __iter__(self) -> Iterator[VideoFrame]:
        for t in range(len(self)):
            yield self.frame(t)

    def frame(self, t: int) -> VideoFrame:
        if not 0 <= t < len(self):
            raise IndexError(f"sequence {self.sequence} has frames 0..{len(self) - 1}, not {t}")
        rendered = self._renderer.render(t)
        counts = np.bincount(rendered.code.ravel(), minlength=len(self._lut))
        lut = self._lut.copy()
        visible = counts[THING_CODE + self.track_ids] if len(self.track_ids) else counts[:0]
        small = (visible > 0) & (visible < self.min_visible_area)
        lut[THING_CODE + self.track_ids[small]] = self._void
        visible = np.where(small, 0, visible)
        panoptic = lut[rendered.code].astype(np.int32)
        self._visible[t] = visible
        self._amodal[t] = [rendered.amodal.get(int(tid), 0) for tid in self.track_ids]
        self._done[t] = True
        stamp = int(round(t * 1e9 / FRAME_RATE_HZ))
        return VideoFrame(self.sequence, t, stamp, rendered.image, panoptic)

    @property
    def meta(self) -> SequenceMeta:
        """Track facts; frames not rendered yet are rendered first."""
        for t in np.flatnonzero(~self._done):
            self.frame(int(t))
        return SequenceMeta(self.sequence, self.scene.seed, self.scene.event, self.min_visible_area,
                            self.track_ids, self.class_ids, self.groups, self._visible.copy(),
                            self._amodal.copy())


class SyntheticDataset:
    """A split of synthetic driving sequences (VideoDataset protocol of ``frames.py``).

    Sequence ``i`` of a split uses seed ``SPLIT_SEED_BASE[split] + i``, so the splits
    never share a sequence. train, val and test are drawn alike (a designed 8-20 frame
    full occlusion in most sequences); ``occlusion`` has a 20-30 frame one in every
    sequence and needs at least 40 frames; sequences shorter than 18 frames have none.
    Sequence ids are ``"0000"``, ``"0001"``, ...; frames are at 10 Hz.

    ``min_visible_area`` (pixels; default 64 at 256x512, scaled with the image area): a
    thing whose visible part is smaller in a frame is labelled void there, so that the
    ground truth never asks for slivers nobody could segment.
    """

    label_divisor = LABEL_DIVISOR
    frame_rate = FRAME_RATE_HZ

    def __init__(self, split: str, num_sequences: int, num_frames: int, height: int = 256,
                 width: int = 512, *, min_visible_area: int | None = None,
                 first_sequence: int = 0, difficulty: str = "") -> None:
        """``first_sequence`` shifts the seeds (sequence i: split base + first_sequence + i);
        ``difficulty`` gives the sequences another split's events (e.g. ``occlusion``
        events on ``train`` seeds, for training)."""
        if split not in SPLIT_SEED_BASE:
            raise ConfigError(f"unknown synthetic split {split!r}; choose one of "
                              f"{', '.join(SPLIT_SEED_BASE)}")
        if not 1 <= num_sequences <= SEEDS_PER_SPLIT:
            raise ConfigError(f"num_sequences must be 1..{SEEDS_PER_SPLIT}, got {num_sequences}")
        if num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
        if height < 32 or width < 64:
            raise ConfigError(f"image size {width}x{height} is too small (at least 64x32)")
        if not 0 <= first_sequence <= SEEDS_PER_SPLIT - num_sequences:
            raise ConfigError(f"first_sequence must be 0..{SEEDS_PER_SPLIT - num_sequences} "
                              f"for {num_sequences} sequences, got {first_sequence}")
        if difficulty not in ("", "standard", *DIFFICULTY):
            raise ConfigError(f"unknown synthetic difficulty {difficulty!r}; choose one of "
                              f"standard, occlusion")
        difficulty = {"": split, "standard": "train"}.get(difficulty, difficulty)
        if difficulty == "occlusion" and num_frames < MIN_OCCLUSION_FRAMES:
            raise ConfigError(f"the occlusion split needs at least {MIN_OCCLUSION_FRAMES} frames "
                              f"per sequence (a 20-30 frame full occlusion with the thing seen "
                              f"before and after), got {num_frames}")
        self.split = split
        self.num_sequences = num_sequences
        self.num_frames = num_frames
        self.height, self.width = height, width
        self.classes = ClassTable.builtin("synthetic")
        if min_visible_area is None:
            scale = height * width / REFERENCE_AREA
            min_visible_area = max(2, round(REFERENCE_MIN_VISIBLE * scale))
        self.min_visible_area = int(min_visible_area)
        self.first_sequence = first_sequence
        self.difficulty = DIFFICULTY[difficulty]
        self._cache: OrderedDict[int, SyntheticSequence] = OrderedDict()

    @property
    def sequence_ids(self) -> list[str]:
        return [f"{i:04d}" for i in range(self.num_sequences)]

    def seed(self, index: int) -> int:
        return SPLIT_SEED_BASE[self.split] + self.first_sequence + index

    def sequence(self, index: int) -> SyntheticSequence:
        """Sequence ``index`` (the last few are kept, so random access stays cheap)."""
        if not 0 <= index < self.num_sequences:
            raise IndexError(f"sequence index {index} outside 0..{self.num_sequences - 1}")
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        scene = plan_scene(self.seed(index), self.num_frames, self.height, self.width,
                           self.difficulty, self.min_visible_area, BUILDING_VARIANTS)
        sequence = SyntheticSequence(f"{index:04d}", scene, self.classes, self.min_visible_area)
        self._cache[index] = sequence
        if len(self._cache) > 4:
            self._cache.popitem(last=False)
        return sequence

    def frame(self, index: int, t: int) -> VideoFrame:
        return self.sequence(index).frame(t)

    def __len__(self) -> int:
        return self.num_sequences * self.num_frames

    def annotated_keys(self) -> list[tuple[str, int]]:
        """(sequence, index) of every frame (all are annotated), in dataset order."""
        return [(f"{i:04d}", t) for i in range(self.num_sequences) for t in range(self.num_frames)]

    def get(self, sequence: str, index: int) -> VideoFrame:
        """One frame by sequence id (``"0003"``) and index (random access)."""
        return self.frame(int(sequence), index)

    def __iter__(self) -> Iterator[VideoFrame]:
        for index in range(self.num_sequences):
            yield from self.sequence(index)

    @property
    def intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of the camera in pixels (the same for every sequence; the
        camera looks level, so the principal point lies on the horizon)."""
        cam = Camera.for_image(self.height, self.width, 1.5)
        return cam.focal, cam.focal, cam.cx, cam.horizon
