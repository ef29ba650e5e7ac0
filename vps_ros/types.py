"""What passes between the stages (docs/architecture.md): classes, segments, tracked frames.

Stages exchange only these types; none reaches into another stage's internals.
Pixel coordinates: x right, y down; boxes are ``(x0, y0, x1, y1)`` with x1/y1
exclusive, in pixels of the map they describe.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

import numpy as np

from .config import load_yaml
from .errors import ConfigError
from .resources import config_path


class PanopticSource(Protocol):
    """Panoptic maps by (sequence, frame): what ``metrics/sources.py`` evaluates and the
    dataset readers of ``data/formats`` provide.

    ``frames(sequence)`` yields ``(frame_index, panoptic map)`` in increasing frame order,
    maps in the package's encoding (``panoptic.py``).
    """

    def sequences(self) -> Iterable[str]: ...

    def frames(self, sequence: str) -> Iterator[tuple[int, np.ndarray]]: ...


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    is_thing: bool
    color: tuple[int, int, int]  # RGB, 0..255


@dataclass(frozen=True)
class ClassTable:
    """A dataset's semantic classes, with contiguous ids 0..C-1 and one void id.

    Contiguous ids let the model's class head, confusion matrices and colour lookups
    index arrays by class id; dataset readers map raw label ids onto them.
    """

    name: str
    classes: tuple[ClassInfo, ...]
    void_id: int = 255

    def __post_init__(self) -> None:
        ids = [c.id for c in self.classes]
        if ids != list(range(len(ids))):
            raise ConfigError(f"class table {self.name!r}: ids must be 0..{len(ids) - 1} in order, "
                              f"got {ids}")
        if self.void_id < len(ids):
            raise ConfigError(f"class table {self.name!r}: void id {self.void_id} collides "
                              f"with a class id")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ConfigError(f"class table {self.name!r}: class names must be unique")

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self) -> Iterator[ClassInfo]:
        return iter(self.classes)

    def __getitem__(self, class_id: int) -> ClassInfo:
        if not 0 <= class_id < len(self.classes):
            raise KeyError(f"class id {class_id} is not in class table {self.name!r} "
                           f"(ids 0..{len(self.classes) - 1}, void {self.void_id})")
        return self.classes[class_id]

    @property
    def thing_ids(self) -> list[int]:
        return [c.id for c in self.classes if c.is_thing]

    @property
    def stuff_ids(self) -> list[int]:
        return [c.id for c in self.classes if not c.is_thing]

    @property
    def is_thing_lut(self) -> np.ndarray:
        """Bool array indexed by class id."""
        return np.array([c.is_thing for c in self.classes], dtype=bool)

    @property
    def colors(self) -> np.ndarray:
        """(C, 3) uint8 RGB array indexed by class id."""
        return np.array([c.color for c in self.classes], dtype=np.uint8).reshape(-1, 3)

    def id_of(self, name: str) -> int:
        for c in self.classes:
            if c.name == name:
                return c.id
        raise KeyError(f"no class named {name!r} in class table {self.name!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in checkpoints and reports)."""
        return {"name": self.name, "void_id": self.void_id,
                "classes": [{"id": c.id, "name": c.name, "is_thing": c.is_thing,
                             "color": list(c.color)} for c in self.classes]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "class table") -> "ClassTable":
        try:
            classes = tuple(ClassInfo(int(c["id"]), str(c["name"]), bool(c["is_thing"]),
                                      tuple(int(v) for v in c["color"]))
                            for c in data["classes"])
            return cls(str(data["name"]), classes, int(data.get("void_id", 255)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: malformed class table ({exc!r}); expected name, "
                              "void_id and classes[] with id, name, is_thing, color") from None

    @classmethod
    def load(cls, path: str | Path) -> "ClassTable":
        return cls.from_dict(load_yaml(path), where=str(path))

    @classmethod
    def named(cls, name_or_path: str) -> "ClassTable":
        """What a ``classes`` setting names: a YAML path if it looks like one
        (``.yaml``/``.yml`` or a ``/``), else a table shipped in config/."""
        if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
            return cls.load(name_or_path)
        return cls.builtin(name_or_path)

    @classmethod
    def builtin(cls, name: str) -> "ClassTable":
        """One of the tables shipped in config/: classes_<name>.yaml."""
        return cls.load(config_path(f"classes_{name.replace('-', '_')}.yaml"))


@dataclass
class FrameSegments:
    """The segmenter's output for one frame: non-overlapping segments.

    ``segment_map[y, x]`` is the index of the segment covering the pixel, or -1 where
    no segment was kept (void). Every per-segment array has length N.
    """

    segment_map: np.ndarray   # (H, W) int32
    class_ids: np.ndarray     # (N,) int32
    scores: np.ndarray        # (N,) float32, class confidence 0..1
    is_thing: np.ndarray      # (N,) bool
    boxes: np.ndarray         # (N, 4) float32 x0, y0, x1, y1
    areas: np.ndarray         # (N,) int64 pixels
    embeddings: np.ndarray    # (N, D) float32, L2-normalised appearance embeddings
    # (N,) int64: the query each segment came from, where a query follows its object from
    # frame to frame (VidEoMT's propagated queries), -1 for a segment no query holds alone
    # (a thing's split-off part); None where query indices name no object across frames.
    queries: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.class_ids)
        names = ("scores", "is_thing", "boxes", "areas", "embeddings")
        for name in names + (("queries",) if self.queries is not None else ()):
            if len(getattr(self, name)) != n:
                raise ValueError(f"FrameSegments.{name} has {len(getattr(self, name))} rows, "
                                 f"expected {n} (one per segment)")
        if self.segment_map.ndim != 2:
            raise ValueError("FrameSegments.segment_map must be 2-D")

    @property
    def num_segments(self) -> int:
        return len(self.class_ids)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the segment map."""
        return self.segment_map.shape[0], self.segment_map.shape[1]

    def mask(self, index: int) -> np.ndarray:
        return self.segment_map == index

    @classmethod
    def empty(cls, height: int, width: int, embed_dim: int) -> "FrameSegments":
        return cls(np.full((height, width), -1, np.int32), np.zeros(0, np.int32),
                   np.zeros(0, np.float32), np.zeros(0, bool), np.zeros((0, 4), np.float32),
                   np.zeros(0, np.int64), np.zeros((0, embed_dim), np.float32))


@dataclass
class TrackedObject:
    """One object of a frame as published: a segment of this frame, or a thing that
    only the memory buffer still holds (``frames_since_seen > 0``, ``area == 0``)."""

    track_id: int                     # 0 for stuff
    class_id: int
    is_thing: bool
    score: float
    area: int                         # pixels in this frame, 0 if memory-only
    box: tuple[float, float, float, float]
    velocity: tuple[float, float] = (0.0, 0.0)   # box-centre motion, pixels per frame
    age: int = 0                      # frames since first seen
    frames_since_seen: int = 0
    box_is_predicted: bool = False    # box from constant-velocity prediction, not a mask


@dataclass
class TrackedFrame:
    """The pipeline's result for one frame."""

    stamp_ns: int
    panoptic: np.ndarray              # (H, W) int32: class_id * label_divisor + track_id
    label_divisor: int
    segments: FrameSegments
    track_ids: np.ndarray             # (N,) int64, one per segment, 0 for stuff
    objects: list[TrackedObject] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    memory_reset: str = ""            # why the tracker memory was cleared before this frame
