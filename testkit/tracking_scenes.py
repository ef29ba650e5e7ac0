"""Scripted scenes for the tracking tests: no model, rectangles drawn into segment maps.

Each actor is a rectangle moving at constant velocity; actors are drawn far to near,
so a nearer one hides what is behind it, and a segment's box and area are those of its
visible pixels, as a segmenter would report them. An actor with fewer than
``MIN_AREA`` visible pixels, or less than ``min_visible`` of its rectangle (inside the
image) visible, is not detected. Appearance embeddings are the actor's unit vector
plus Gaussian noise, renormalised.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vps_ros.types import FrameSegments

HEIGHT, WIDTH, DIM = 256, 512, 32
ROAD, SKY, CAR, TRUCK, PEDESTRIAN = 0, 5, 6, 7, 8
MIN_AREA = 30


@dataclass
class Actor:
    name: str
    class_id: int
    box: tuple[float, float, float, float]   # x0, y0, x1, y1 at frame 0 (pixels)
    velocity: tuple[float, float]            # pixels per frame
    look: np.ndarray                         # (DIM,) unit appearance vector
    depth: int = 0                           # larger is nearer (drawn later)
    frames: range = range(10 ** 6)           # frames the actor is in the scene

    def box_at(self, frame: int) -> tuple[int, int, int, int]:
        dx, dy = self.velocity[0] * frame, self.velocity[1] * frame
        x0, y0, x1, y1 = self.box
        return (round(x0 + dx), round(y0 + dy), round(x1 + dx), round(y1 + dy))


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def looks(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Distinct appearances (random directions: cosine near 0 in DIM dimensions)."""
    return [unit(rng.normal(size=DIM)) for _ in range(count)]


def look_alike(rng: np.random.Generator, look: np.ndarray, cosine: float) -> np.ndarray:
    """A unit vector whose cosine with ``look`` is ``cosine``."""
    other = rng.normal(size=DIM)
    other -= other @ look * look
    return unit(cosine * look + np.sqrt(1 - cosine ** 2) * unit(other))


def render(actors: list[Actor], frame: int, rng: np.random.Generator, noise: float = 0.05,
           min_visible: float = 0.0) -> tuple[FrameSegments, list[str]]:
    """The frame's segments (road and sky stuff first) and the actor name per segment."""
    canvas = np.full((HEIGHT, WIDTH), -1, np.int32)
    canvas[: HEIGHT // 3] = 1
    canvas[HEIGHT // 2:] = 0
    present = sorted((a for a in actors if frame in a.frames), key=lambda a: a.depth)
    regions = []
    for k, actor in enumerate(present):
        x0, y0, x1, y1 = actor.box_at(frame)
        regions.append((slice(max(y0, 0), max(y1, 0)), slice(max(x0, 0), max(x1, 0))))
        canvas[regions[-1]] = k + 2
    names, class_ids, boxes, areas, embeddings = ["road", "sky"], [ROAD, SKY], [], [], []
    segment_map = np.where(canvas < 2, canvas, -1)
    for k, actor in enumerate(present):
        rows, cols = regions[k]
        visible = canvas[rows, cols] == k + 2
        ys, xs = np.nonzero(visible)
        if len(xs) < max(MIN_AREA, min_visible * visible.size):
            continue
        segment_map[rows, cols][visible] = len(names)
        names.append(actor.name)
        class_ids.append(actor.class_id)
        boxes.append((xs.min() + cols.start, ys.min() + rows.start,
                      xs.max() + 1 + cols.start, ys.max() + 1 + rows.start))
        areas.append(len(xs))
        embeddings.append(unit(actor.look + noise * rng.normal(size=DIM)))
    stuff_boxes = [(0, HEIGHT // 2, WIDTH, HEIGHT), (0, 0, WIDTH, HEIGHT // 3)]
    stuff_areas = [int(np.count_nonzero(segment_map == s)) for s in (0, 1)]
    stuff_looks = [unit(np.ones(DIM)), unit(-np.ones(DIM))]
    segments = FrameSegments(
        segment_map=segment_map,
        class_ids=np.array(class_ids, np.int32),
        scores=np.full(len(names), 0.9, np.float32),
        is_thing=np.array([False, False] + [True] * (len(names) - 2)),
        boxes=np.array(stuff_boxes + boxes, np.float32).reshape(-1, 4),
        areas=np.array(stuff_areas + areas, np.int64),
        embeddings=np.array(stuff_looks + embeddings, np.float32).reshape(-1, DIM))
    return segments, names


def run(tracker, actors: list[Actor], frames: int, seed: int = 0, noise: float = 0.05,
        min_visible: float = 0.0) -> dict[str, list[tuple[int, int]]]:
    """Track the scene; per actor, the (frame, track id) of every frame it was detected."""
    rng = np.random.default_rng(seed)
    seen: dict[str, list[tuple[int, int]]] = {a.name: [] for a in actors}
    for frame in range(frames):
        segments, names = render(actors, frame, rng, noise, min_visible)
        ids = tracker.update(segments)
        assert ids[0] == 0 and ids[1] == 0, "stuff segments must get id 0"
        for name, track_id in zip(names[2:], ids[2:].tolist()):
            seen[name].append((frame, track_id))
    return seen


def ids_of(track: list[tuple[int, int]]) -> list[int]:
    """The distinct ids of one actor, in order of first use."""
    return list(dict.fromkeys(i for _, i in track))


def hidden_frames(track: list[tuple[int, int]]) -> int:
    """The longest run of frames an actor was not detected between two detections."""
    frames = [f for f, _ in track]
    return max((b - a - 1 for a, b in zip(frames, frames[1:])), default=0)


# The scenes of test/test_tracking_scenarios.py, also swept by benchmarks/bench_tracking.py.

def crossing(seed: int) -> list[Actor]:
    """Car A (near lane) drives right, look-alike car B (far lane, cosine 0.97) drives
    left behind it; B is hidden by A for a few frames while they cross."""
    rng = np.random.default_rng(seed + 100)
    (a,) = looks(rng, 1)
    return [Actor("A", CAR, (20, 150, 100, 200), (6, 0), a, depth=2),
            Actor("B", CAR, (430, 158, 480, 192), (-5, 0), look_alike(rng, a, 0.97), depth=1)]


def _car_and_truck(seed: int, car_speed: float, car_width: int, truck: tuple) -> list[Actor]:
    rng = np.random.default_rng(seed + 200)
    car_look, truck_look = looks(rng, 2)
    return [Actor("truck", TRUCK, truck, (0, 0), truck_look, depth=2),
            Actor("car", CAR, (20, 140, 20 + car_width, 185), (car_speed, 0), car_look, depth=1)]


def car_behind_truck(seed: int) -> list[Actor]:
    """A car at 10 px/frame passes behind a parked truck; rendered with
    ``min_visible=1`` (reported only when whole) it is unseen for exactly 20 frames."""
    return _car_and_truck(seed, 10, 60, (260, 90, 410, 215))


def car_shrinking_behind_truck(seed: int) -> list[Actor]:
    """A car at 4 px/frame passes behind a parked truck, seen in part on the way in
    and out (truncated boxes), wholly hidden for about 20 frames."""
    return _car_and_truck(seed, 4, 70, (200, 90, 350, 215))


def leaving_and_entering(seed: int, entering_look=None) -> list[Actor]:
    """Car A leaves at the right edge and car B enters there 5 frames later; pedestrian P
    leaves at the left edge and car Q, with P's very look, enters there."""
    rng = np.random.default_rng(seed + 300)
    a, b, p = looks(rng, 3)
    b = b if entering_look is None else entering_look(rng, a)
    return [Actor("A", CAR, (380, 140, 450, 185), (8, 0), a, frames=range(0, 20)),
            Actor("B", CAR, (520, 140, 590, 185), (-8, 0), b, frames=range(25, 60)),
            Actor("P", PEDESTRIAN, (40, 120, 70, 200), (-4, 0), p, frames=range(0, 30)),
            Actor("Q", CAR, (-60, 140, 0, 185), (4, 0), p, frames=range(35, 60))]


def look_alike_entering(seed: int) -> list[Actor]:
    """:func:`leaving_and_entering` with B a look-alike of A (cosine 0.9)."""
    return leaving_and_entering(seed, lambda rng, a: look_alike(rng, a, 0.9))


def parked_row(seed: int) -> list[Actor]:
    """Six parked look-alike cars (cosine 0.95 to one another's model) in a row; a truck
    drives past in front and hides each one in turn."""
    rng = np.random.default_rng(seed + 400)
    model, truck_look = looks(rng, 2)
    cars = [Actor(f"car{k}", CAR, (40 + 75 * k, 150, 100 + 75 * k, 185), (0, 0),
                  look_alike(rng, model, 0.95), depth=1) for k in range(6)]
    return cars + [Actor("truck", TRUCK, (-200, 120, -60, 215), (5, 0), truck_look, depth=2)]


#: name -> (scene builder, frames, min_visible)
SCENES = {
    "crossing": (crossing, 80, 0.0),
    "truck_whole": (car_behind_truck, 43, 1.0),
    "truck_truncated": (car_shrinking_behind_truck, 90, 0.0),
    "leave_enter": (leaving_and_entering, 60, 0.0),
    "alike_enters": (look_alike_entering, 60, 0.0),
    "parked_row": (parked_row, 140, 0.0),
}


def id_errors(track: dict[str, list[tuple[int, int]]]) -> int:
    """Id switches (an actor's ids beyond its first) plus ids shared by several actors."""
    switches = sum(len(ids_of(t)) - 1 for t in track.values() if t)
    owners: dict[int, set[str]] = {}
    for name, t in track.items():
        for track_id in ids_of(t):
            owners.setdefault(track_id, set()).add(name)
    return switches + sum(len(names) - 1 for names in owners.values())


def frame_of(boxes: list[tuple[int, int, int, int]], embeddings: list,
             class_ids: list[int] | None = None, size: tuple[int, int] = (HEIGHT, WIDTH),
             dim: int = 4) -> FrameSegments:
    """A hand-made frame: a road segment (stuff, index 0), then one thing per box.

    Things are drawn in order into the segment map; their boxes are reported exactly
    as given, their areas as drawn. ``class_ids`` defaults to cars; embeddings are
    ``dim``-dimensional.
    """
    height, width = size
    class_ids = [CAR] * len(boxes) if class_ids is None else class_ids
    segment_map = np.full((height, width), -1, np.int32)
    segment_map[height // 2:] = 0
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        segment_map[y0:y1, x0:x1] = k + 1
    areas = np.bincount(segment_map.ravel() + 1, minlength=len(boxes) + 2)[1:]
    return FrameSegments(
        segment_map=segment_map,
        class_ids=np.array([ROAD] + list(class_ids), np.int32),
        scores=np.full(len(boxes) + 1, 0.9, np.float32),
        is_thing=np.array([False] + [True] * len(boxes)),
        boxes=np.array([(0, height // 2, width, height)] + list(boxes), np.float32),
        areas=areas.astype(np.int64),
        embeddings=np.array([unit(np.ones(dim))] + [unit(np.asarray(e, float))
                                                     for e in embeddings], np.float32))
