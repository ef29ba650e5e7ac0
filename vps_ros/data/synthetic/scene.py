"""Planning of one synthetic drive: the street, the camera's motion and every object's path,
decided from the seed before any pixel is drawn.

Geometry (metres): the camera looks along +z from ``mount_height`` above a flat road; x is
to the right. Objects are axis-aligned boxes whose footprint centre follows ``x[t]`` and
the world position ``z[t]`` along the street; the camera sits at ``ego_z[t]``, so an
object's distance is ``z[t] - ego_z[t]``. A small yaw of the camera shifts the whole image
horizontally by ``shift[t]`` pixels.

The planner first places one designed occlusion event (a thing hidden by a truck or a
kiosk for a chosen number of frames, then seen again), then fills the street with parked
and moving traffic, pedestrians and street furniture, rejecting any object whose footprint
would overlap another's at some frame. Hidden and visible frames of the events are
checked on projected boxes here; the renderer measures the exact pixels.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

FRAME_RATE_HZ = 10.0
NEAR_M = 0.5                      # points nearer than this to the camera are not drawn
FAR_M = 160.0                     # objects beyond this are not drawn
MIN_EVENT_FRAMES = 8              # shortest designed full occlusion
THING_KINDS = ("car", "truck", "pedestrian", "cyclist")
KIND_CLASS = {"car": "car", "truck": "truck", "pedestrian": "pedestrian", "cyclist": "cyclist",
              "tree": "vegetation", "hedge": "vegetation", "kiosk": "building"}

CAR_COLORS = ((226, 226, 224), (176, 178, 182), (36, 36, 40), (32, 48, 112), (168, 28, 28),
              (40, 82, 52), (222, 182, 42), (92, 140, 192), (112, 76, 50), (222, 112, 32),
              (120, 120, 126), (150, 20, 60))
TRUCK_COLORS = ((236, 236, 232), (200, 202, 205), (40, 70, 140), (170, 40, 35), (230, 200, 60),
                (60, 110, 70))
CLOTHES = ((30, 30, 36), (60, 62, 70), (210, 210, 205), (150, 30, 35), (40, 60, 120),
           (90, 110, 60), (200, 150, 60), (120, 80, 140), (70, 120, 150), (180, 90, 110),
           (110, 85, 60), (230, 200, 40))
SKIN = ((236, 200, 170), (205, 160, 120), (160, 110, 75), (110, 75, 50))
HAIR = ((30, 25, 20), (90, 60, 30), (200, 170, 100), (120, 120, 120))


@dataclass(frozen=True)
class Camera:
    height: int             # image rows
    width: int              # image columns
    focal: float            # pixels
    cx: float
    horizon: float          # image row of the horizon
    mount_height: float     # metres above the road

    @classmethod
    def for_image(cls, height: int, width: int, mount_height: float) -> "Camera":
        """About 70 degrees horizontal field of view, horizon a little above the middle."""
        return cls(height, width, 0.72 * width, width / 2.0, 0.42 * height, mount_height)

    def project(self, x, y, z, shift):
        """Image (u, v) of points (x, y up, z ahead) for a yaw shift in pixels."""
        return (self.cx + shift + self.focal * x / z,
                self.horizon + self.focal * (self.mount_height - y) / z)


@dataclass(frozen=True)
class Street:
    """Cross-section, metres: opposite lane, ego lane, right lane, bike lane, parking strip."""

    lane: float
    bike: float
    parking: float
    sidewalk_left: float
    sidewalk_right: float
    setback_left: float      # grass between sidewalk and façades
    setback_right: float

    @property
    def road_left(self) -> float:
        return -1.5 * self.lane

    @property
    def road_right(self) -> float:
        return 1.5 * self.lane + self.bike + self.parking

    @property
    def outer_left(self) -> float:
        return self.road_left - self.sidewalk_left

    @property
    def outer_right(self) -> float:
        return self.road_right + self.sidewalk_right

    @property
    def facade_left(self) -> float:
        return self.outer_left - self.setback_left

    @property
    def facade_right(self) -> float:
        return self.outer_right + self.setback_right

    def lane_x(self, name: str) -> float:
        return {"opposite": -self.lane, "ego": 0.0, "right": self.lane,
                "bike": 1.5 * self.lane + self.bike / 2,
                "parking": 1.5 * self.lane + self.bike + self.parking / 2}[name]

    def walk_x(self, side: int, rng: np.random.Generator) -> float:
        """A lateral position on the outer part of a sidewalk (side -1 left, +1 right):
        street furniture stands nearer the curb, so it is always between the camera and
        the pedestrians behind it."""
        if side > 0:
            return rng.uniform(self.road_right + 1.6, self.outer_right - 0.4)
        return rng.uniform(self.outer_left + 0.4, self.road_left - 1.6)

    def curb_x(self, side: int, offset: float) -> float:
        return self.road_right + offset if side > 0 else self.road_left - offset


@dataclass(frozen=True)
class Look:
    """Everything that decides an object's appearance; look-alikes share one Look."""

    colors: tuple[tuple[int, int, int], ...]
    texture: int                  # which crop of the sequence's surface-noise tile
    shape: tuple[float, ...] = ()  # kind-specific shape parameters (e.g. a canopy outline)


@dataclass
class Body:
    """One object: a thing (car, truck, pedestrian, cyclist) or a piece of street furniture
    drawn like one (tree, hedge, kiosk: stuff classes)."""

    kind: str
    size: tuple[float, float, float]      # width (x), length (z), height (y), metres
    x: np.ndarray                         # (T,) lateral centre
    z: np.ndarray                         # (T,) world position along the street
    facing: str                           # forward, backward, left, right (where it moves/faces)
    look: Look
    gait: np.ndarray | None = None        # (T,) walking/pedalling phase, radians
    group: int = -1                       # look-alike group within the sequence, -1: none
    track_id: int = 0                     # things: 1.. in order of first appearance

    @property
    def is_thing(self) -> bool:
        return self.kind in THING_KINDS


@dataclass(frozen=True)
class Difficulty:
    """What a split asks of a sequence."""

    event_probability: float              # chance of a designed full occlusion
    hidden_frames: tuple[int, int]        # its length in frames (inclusive range)
    twin_probability: float               # chance that the hidden thing has a look-alike near
    lookalike_probability: float          # chance of look-alike groups among other things
    density: float                        # traffic and pedestrian density factor


@dataclass(frozen=True)
class Facades:
    """Blocks beside the street on one side, sorted by start position along the street:
    band index into the façade atlas (-1: none), height in metres."""

    x: float
    start: np.ndarray
    band: np.ndarray
    height: np.ndarray


@dataclass
class Scene:
    seed: int
    num_frames: int
    camera: Camera
    street: Street
    ego_z: np.ndarray                     # (T,) metres
    shift: np.ndarray                     # (T,) int pixels of yaw
    gain: np.ndarray                      # (T,) global illumination
    tint: np.ndarray                      # (3,) colour cast
    noise_sigma: float
    facades: tuple[Facades, Facades]      # left, right
    bodies: list[Body] = field(default_factory=list)
    event: str = "none"                   # kind of the designed full occlusion
    event_target: Body | None = None      # the thing it hides


def smoothstep(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3 - 2 * s)


def relative_box(body: Body, ego_z: np.ndarray | float, t) -> tuple:
    """(x0, x1, z0, z1) of the body relative to the camera at frame(s) t."""
    w, length, _ = body.size
    rel = body.z[t] - (ego_z[t] if isinstance(ego_z, np.ndarray) else ego_z)
    x = body.x[t]
    return x - w / 2, x + w / 2, rel - length / 2, rel + length / 2


def footprint_width(body: Body) -> float:
    """Width of what stands on the ground: a tree's trunk, not its canopy."""
    return 0.4 if body.kind == "tree" else body.size[0]


def screen_boxes(camera: Camera, body: Body, ego_z: np.ndarray, shift: np.ndarray,
                 frames=slice(None)) -> np.ndarray:
    """(T, 4) image box x0, y0, x1, y1 of the body's box corners in front of the camera, at
    ``frames`` (all by default); NaN rows where no corner is."""
    x0, x1, z0, z1 = relative_box(body, ego_z, frames)
    shift = shift[frames]
    h = body.size[2]
    xs = np.stack([x0, x1, x0, x1, x0, x1, x0, x1])
    zs = np.stack([z0, z0, z1, z1, z0, z0, z1, z1])
    ys = np.array([0, 0, 0, 0, h, h, h, h], float)[:, None]
    valid = zs > NEAR_M
    safe_z = np.where(valid, zs, 1.0)
    u, v = camera.project(xs, ys, safe_z, shift[None, :])
    box = np.full((len(shift), 4), np.nan)
    ok = valid.any(axis=0) & (z0 < FAR_M)
    if ok.any():
        big = np.inf
        box[ok, 0] = np.where(valid, u, big).min(axis=0)[ok]
        box[ok, 1] = np.where(valid, v, big).min(axis=0)[ok]
        box[ok, 2] = np.where(valid, u, -big).max(axis=0)[ok]
        box[ok, 3] = np.where(valid, v, -big).max(axis=0)[ok]
    return box


def covers(camera: Camera, occluder: Body, box: np.ndarray, ego_z: np.ndarray,
           shift: np.ndarray) -> np.ndarray:
    """(T,) whether the silhouette of ``occluder`` (a box taller than the camera) covers the
    image box ``box`` (T, 4) entirely.

    The silhouette is the near face plus, for a box beside the line of sight, its inner
    side face. Its vertical extent at a column shrinks with the depth seen there, so it
    suffices to test the target's column nearest the image centre.
    """
    x0, x1, z0, z1 = relative_box(occluder, ego_z, slice(None))
    h, f, hc = occluder.size[2], camera.focal, camera.mount_height
    ok = z0 > NEAR_M
    near, far = np.where(ok, z0, 1.0), np.where(ok, z1, 1.0)
    a0 = (box[:, 0] - camera.cx - shift) / f          # rays (x / z) of the box's edges
    a1 = (box[:, 2] - camera.cx - shift) / f
    right, left = x0 > 0, x1 < 0
    lo = np.where(right, x0 / far, x0 / near)
    hi = np.where(left, x1 / far, x1 / near)
    worst = np.where(right, a0, np.where(left, a1, 0.0))
    on_near = (worst >= x0 / near) & (worst <= x1 / near)
    side_x = np.where(right, x0, x1)
    with np.errstate(divide="ignore", invalid="ignore"):
        side_depth = np.clip(side_x / worst, near, far)
    depth = np.where(on_near | ~(right | left), near, side_depth)
    top = camera.horizon + f * (hc - h) / depth
    bottom = camera.horizon + f * hc / depth
    with np.errstate(invalid="ignore"):
        return ok & (a0 >= lo) & (a1 <= hi) & (box[:, 1] >= top) & (box[:, 3] <= bottom)


@dataclass(frozen=True)
class HiddenRun:
    start: int
    length: int
    clear: np.ndarray          # frames before and after in which the target is clearly seen


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of every run of True."""
    padded = np.concatenate([[False], flags, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2])]


class Planner:
    """Places bodies on the street one by one, refusing overlapping footprints."""

    def __init__(self, rng: np.random.Generator, scene: Scene, difficulty: Difficulty,
                 min_area: int) -> None:
        self.rng = rng
        self.scene = scene
        self.difficulty = difficulty
        self.min_area = min_area
        self.t = np.arange(scene.num_frames)
        self.groups = 0
        # Footprints (4, T): x0, x1, z0, z1 in world z; the first is the ego car's (the
        # camera sits at its front), so nothing is placed where the camera drives.
        ego = scene.ego_z
        side = np.full_like(ego, 0.95)
        self._boxes: list[np.ndarray] = [np.stack([-side, side, ego - 4.2, ego + 0.3])]
        self._protected: tuple | None = None  # the event target's clear frames, see _protect

    def _protected_target(self) -> Body | None:
        return None if self._protected is None else self._protected[0]

    # -- placement -------------------------------------------------------------------
    def _protect(self, target: Body, frames: np.ndarray) -> None:
        """Keep ``target`` visible in ``frames``: later bodies may not cover a quarter of
        its box there from in front."""
        s = self.scene
        box = screen_boxes(s.camera, target, s.ego_z, s.shift, frames)
        self._protected = (target, frames, box, relative_box(target, s.ego_z, frames)[2])

    def hides_protected(self, body: Body) -> bool:
        if self._protected is None:
            return False
        target, frames, box, depth = self._protected
        s = self.scene
        near = relative_box(body, s.ego_z, frames)[2] < depth
        if not near.any():
            return False
        other = screen_boxes(s.camera, body, s.ego_z, s.shift, frames)
        with np.errstate(invalid="ignore"):
            w = np.minimum(box[:, 2], other[:, 2]) - np.maximum(box[:, 0], other[:, 0])
            h = np.minimum(box[:, 3], other[:, 3]) - np.maximum(box[:, 1], other[:, 1])
            overlap = np.clip(np.nan_to_num(w), 0, None) * np.clip(np.nan_to_num(h), 0, None)
            area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
        return bool(np.any(near & (overlap > 0.25 * area)))

    def fits(self, body: Body, margin: float = 0.4) -> bool:
        if body is not self._protected_target() and self.hides_protected(body):
            return False
        mine = self._footprint(body)
        other = np.stack(self._boxes)                       # (N, 4, T)
        overlap = ((mine[0] < other[:, 1] + margin) & (other[:, 0] < mine[1] + margin)
                   & (mine[2] < other[:, 3] + margin) & (other[:, 2] < mine[3] + margin))
        return not overlap.any()

    def add(self, *bodies: Body) -> bool:
        """Add all of ``bodies`` if none overlaps a placed body (or another of them)."""
        placed = len(self._boxes)
        for body in bodies:
            if not self.fits(body):
                del self._boxes[placed:]
                return False
            self._boxes.append(self._footprint(body))
        self.scene.bodies.extend(bodies)
        return True

    @staticmethod
    def _footprint(body: Body) -> np.ndarray:
        half_w, half_l = footprint_width(body) / 2, body.size[1] / 2
        return np.stack([body.x - half_w, body.x + half_w, body.z - half_l, body.z + half_l])

    def new_group(self) -> int:
        self.groups += 1
        return self.groups - 1

    # -- object factories --------------------------------------------------------------
    def look(self, kind: str) -> Look:
        rng = self.rng
        texture = int(rng.integers(1 << 16))
        if kind == "car":
            return Look((CAR_COLORS[rng.integers(len(CAR_COLORS))],), texture)
        if kind == "truck":
            return Look((TRUCK_COLORS[rng.integers(len(TRUCK_COLORS))],
                         TRUCK_COLORS[rng.integers(len(TRUCK_COLORS))]), texture)
        if kind in ("pedestrian", "cyclist"):
            pick = [CLOTHES[i] for i in rng.choice(len(CLOTHES), 2, replace=False)]
            return Look((pick[0], pick[1], SKIN[rng.integers(len(SKIN))],
                         HAIR[rng.integers(len(HAIR))], CAR_COLORS[rng.integers(len(CAR_COLORS))]),
                        texture)
        if kind == "tree":
            green = (int(rng.integers(40, 75)), int(rng.integers(85, 125)),
                     int(rng.integers(25, 50)))
            return Look((green, (92, 70, 50)), texture, tuple(rng.uniform(0.8, 1.15, 14)))
        if kind == "hedge":
            return Look(((int(rng.integers(45, 70)), int(rng.integers(95, 120)), 40),), texture)
        wall = ((200, 190, 170), (150, 160, 150), (120, 130, 150))[rng.integers(3)]
        poster = CLOTHES[rng.integers(len(CLOTHES))]
        return Look((wall, poster), texture)

    def size(self, kind: str) -> tuple[float, float, float]:
        u = self.rng.uniform
        return {"car": lambda: (u(1.72, 1.9), u(4.1, 4.7), u(1.38, 1.55)),
                "truck": lambda: (u(2.4, 2.55), u(6.5, 9.0), u(3.2, 3.8)),
                "pedestrian": lambda: (u(0.5, 0.6), 0.4, u(1.6, 1.9)),
                "cyclist": lambda: (0.6, 1.8, u(1.65, 1.85)),
                "tree": lambda: (u(3.0, 4.2), 0.4, u(5.0, 7.5)),
                "kiosk": lambda: (0.9, u(2.0, 6.0), u(2.5, 3.2)),
                "hedge": lambda: (0.8, u(5.0, 16.0), u(0.95, 1.3))}[kind]()

    def body(self, kind: str, x, z, facing: str, look: Look | None = None,
             size: tuple[float, float, float] | None = None, group: int = -1) -> Body:
        """A body; crossing pedestrians and cyclists turn their box across the street."""
        n = self.scene.num_frames
        size = size or self.size(kind)
        if kind == "cyclist" and facing in ("left", "right"):
            size = (size[1], size[0], size[2])
        x = np.broadcast_to(np.asarray(x, float), (n,)).copy()
        z = np.broadcast_to(np.asarray(z, float), (n,)).copy()
        gait = None
        if kind in ("pedestrian", "cyclist"):
            travelled = np.abs(np.diff(x, prepend=x[0])) + np.abs(np.diff(z, prepend=z[0]))
            stride = 1.4 if kind == "pedestrian" else 2.2
            gait = self.rng.uniform(0, 2 * np.pi) + np.cumsum(travelled) * 2 * np.pi / stride
        return Body(kind, size, x, z, facing, look or self.look(kind), gait, group)

    # -- designed occlusion event ------------------------------------------------------
    def hidden_run(self, occluder: Body, target: Body) -> HiddenRun | None:
        """The longest run of frames in which ``target`` is in the image
        and entirely covered by ``occluder``'s silhouette, provided the target is clearly
        visible (in the image, big enough, at most 60% of its box behind the occluder's box)
        in at least 3 frames before and 3 frames after the run; None otherwise."""
        s = self.scene
        cam = s.camera
        box = screen_boxes(cam, target, s.ego_z, s.shift)
        whole = screen_boxes(cam, occluder, s.ego_z, s.shift)
        with np.errstate(invalid="ignore"):
            inside_image = ((box[:, 0] >= 0) & (box[:, 1] >= 0) & (box[:, 2] <= cam.width)
                            & (box[:, 3] <= cam.height))
            hidden = inside_image & covers(cam, occluder, box, s.ego_z, s.shift)
            area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
            wide = np.minimum(box[:, 2], whole[:, 2]) - np.maximum(box[:, 0], whole[:, 0])
            high = np.minimum(box[:, 3], whole[:, 3]) - np.maximum(box[:, 1], whole[:, 1])
            overlap = np.nan_to_num(np.clip(wide, 0, None) * np.clip(high, 0, None))
            clear = inside_image & (overlap <= 0.6 * area) & (area >= 5 * self.min_area)
        runs = _runs(hidden)
        if not runs:
            return None
        start, length = max(runs, key=lambda r: r[1])
        before = np.flatnonzero(clear[:start])
        after = start + length + np.flatnonzero(clear[start + length:])
        if len(before) < 3 or len(after) < 3:
            return None
        return HiddenRun(start, length, np.concatenate([before[-4:], after[:4]]))

    def occlusion_event(self) -> bool:
        """Place one designed full occlusion whose length lies in the difficulty's range.

        Event kinds are tried in random order (several rounds when every sequence must have
        an event). For each random geometry a knob (how long the car stays in the truck's
        lane, how fast the pedestrian walks) is scanned until the hidden run has the wanted
        length; the drawn silhouettes hide a frame or two longer than the boxes tested
        here, hence the margin.
        """
        n = self.scene.num_frames
        lo, hi = self.difficulty.hidden_frames
        hi = min(hi, n - 10)
        if hi < MIN_EVENT_FRAMES:
            return False
        want = (min(lo + 1, hi - 3), hi - 3) if hi - 3 >= MIN_EVENT_FRAMES else (hi, hi)
        kinds = ["lane_change", "crossing", "parked", "kiosk"]
        self.rng.shuffle(kinds)
        rounds = 4 if self.difficulty.event_probability >= 1.0 else 1
        for kind in kinds * rounds:
            for _ in range(12):
                seed = int(self.rng.integers(1 << 62))
                found = self._tune(kind, seed, want)
                if found is None or not self.add(*found[:2]):
                    continue
                occluder, target, run = found
                self.scene.event, self.scene.event_target = kind, target
                self._protect(target, run.clear)
                if self.rng.random() < self.difficulty.twin_probability:
                    self._twin(target)
                return True
        return False

    def _tune(self, kind: str, seed: int, want: tuple[int, int]
              ) -> tuple[Body, Body, HiddenRun] | None:
        """(occluder, target, run) at the first knob setting of the geometry ``seed`` whose
        hidden run has a wanted length; geometries that give no valid run at either end of
        the knob are given up."""
        runs = {}
        for knob in (0.0, 1.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875):
            occluder, target = self._candidate(kind, seed, knob)
            run = self.hidden_run(occluder, target)
            if run is not None and want[0] <= run.length <= want[1]:
                return occluder, target, run
            runs[knob] = run
            if knob == 1.0 and runs[0.0] is None and run is None:
                return None
        return None

    def _candidate(self, kind: str, seed: int, knob: float) -> tuple[Body, Body]:
        """(occluder, target) of an event: geometry from ``seed``, tuned by ``knob``."""
        saved, self.rng = self.rng, np.random.default_rng(seed)
        try:
            return getattr(self, f"_event_{kind}")(knob)
        finally:
            self.rng = saved

    def _lead_truck(self) -> Body:
        s = self.scene
        gap = self.rng.uniform(9.5, 16.0)
        return self.body("truck", 0.0, s.ego_z + gap, "forward")

    def _event_lane_change(self, knob: float) -> tuple[Body, Body]:
        """A car ahead in the right lane changes into the ego lane in front of a lead truck,
        which hides it, and changes back; ``knob`` sets how long it stays."""
        s, rng = self.scene, self.rng
        truck = self._lead_truck()
        gap = truck.z[0] - s.ego_z[0] + rng.uniform(9.0, 24.0)
        t1 = rng.uniform(3, max(4.0, s.num_frames / 3))
        tau = rng.uniform(6, 12)
        dwell = knob * 28.0
        lane = s.street.lane
        pull_in = smoothstep((self.t - t1) / tau)
        pull_out = smoothstep((self.t - t1 - tau - dwell) / tau)
        x = lane * (1 - pull_in + pull_out)
        return truck, self.body("car", x, s.ego_z + gap, "forward")

    def _event_crossing(self, knob: float) -> tuple[Body, Body]:
        """A pedestrian crosses the street far ahead, behind a lead truck; ``knob`` sets the
        walking speed."""
        s, rng = self.scene, self.rng
        truck = self._lead_truck()
        z = truck.z[0] + rng.uniform(12.0, 45.0)
        side = rng.choice([-1, 1])
        x_from, x_to = s.street.walk_x(side, rng), s.street.walk_x(-side, rng)
        t_mid = rng.uniform(0.3, 0.7) * s.num_frames
        speed = 0.34 - 0.24 * knob
        t_start = t_mid - 0.5 * abs(x_to - x_from) / speed
        progress = np.clip(speed * (self.t - t_start) / abs(x_to - x_from), 0, 1)
        walker = self.body("pedestrian", x_from + (x_to - x_from) * progress, z,
                           "left" if x_to < x_from else "right")
        return truck, walker

    def _behind_furniture(self, kind: str, x_occluder: float, side: int, knob: float,
                          size: tuple[float, float, float] | None = None) -> tuple[Body, Body]:
        """An occluder at the side of the street and a pedestrian on the sidewalk beyond it,
        placed so that the camera's sight line to the pedestrian sweeps across the occluder
        around a chosen frame: the pedestrian is seen, hidden, and seen again. The sweep
        is slower when the pedestrian walks towards the camera (``knob`` 0) than away (1)."""
        s, rng = self.scene, self.rng
        n = s.num_frames
        x_walker = s.street.walk_x(side, rng)
        t_cross = int(rng.uniform(0.35, 0.65) * (n - 1))
        ahead = rng.uniform(12.0, 28.0)              # walker's distance when hidden
        speed = 0.4 * knob - 0.18
        occluder_z = s.ego_z[t_cross] + ahead * abs(x_occluder / x_walker)
        occluder = self.body(kind, x_occluder, occluder_z, "forward", size=size)
        z0 = s.ego_z[t_cross] + ahead - speed * t_cross
        walker = self.body("pedestrian", x_walker, z0 + speed * self.t,
                           "forward" if speed >= 0 else "backward")
        return occluder, walker

    def _event_parked(self, knob: float) -> tuple[Body, Body]:
        """A pedestrian on the right sidewalk passes behind a parked delivery van (a truck)."""
        u = self.rng.uniform
        van = (u(2.1, 2.3), u(5.0, 6.0), u(2.6, 3.0))
        return self._behind_furniture("truck", self.scene.street.lane_x("parking"), 1, knob, van)

    def _event_kiosk(self, knob: float) -> tuple[Body, Body]:
        """A pedestrian passes behind a kiosk at the curb (occlusion by stuff)."""
        side = int(self.rng.choice([-1, 1]))
        u = self.rng.uniform
        booth = (0.9, u(1.6, 3.2), u(2.5, 3.0))
        return self._behind_furniture("kiosk", self.scene.street.curb_x(side, 0.75), side, knob,
                                      booth)

    def _twin(self, target: Body) -> None:
        """A look-alike of the hidden thing near it, so that appearance alone cannot tell
        which one comes back."""
        group = self.new_group()
        for _ in range(40):
            dz = self.rng.choice([-1, 1]) * self.rng.uniform(6.0, 15.0)
            if target.kind == "car":
                x = self.scene.street.lane
            else:
                x = target.x + self.rng.uniform(-0.8, 0.8)
            twin = Body(target.kind, target.size, np.broadcast_to(x, target.x.shape).copy(),
                        target.z + dz, target.facing, target.look,
                        None if target.gait is None else target.gait + 1.3, group)
            if self.add(twin):
                target.group = group
                return

    # -- background ------------------------------------------------------------------------
    def street_range(self, ahead: float = 90.0) -> tuple[float, float]:
        return float(self.scene.ego_z[0] - 5.0), float(self.scene.ego_z[-1] + ahead)

    def furniture(self) -> None:
        """Trees and kiosks at the curbs, hedges along the left curb."""
        s, rng = self.scene, self.rng
        z_min, z_max = self.street_range()
        for side in (-1, 1):
            z = z_min + rng.uniform(0, 8)
            while z < z_max:
                if rng.random() < 0.45:
                    self.add(self.body("tree", s.street.curb_x(side, 0.6), z, "forward"))
                z += rng.uniform(8.0, 16.0)
            z = z_min + rng.uniform(10, 60)
            while z < z_max:
                size = self.size("kiosk")
                self.add(self.body("kiosk", s.street.curb_x(side, 0.3 + size[0] / 2), z, "forward",
                                   size=size))
                z += rng.uniform(50, 140)
        z = z_min + rng.uniform(0, 30)
        while z < z_max:
            size = self.size("hedge")
            if rng.random() < 0.5:
                self.add(self.body("hedge", s.street.curb_x(-1, 0.5), z, "forward", size=size))
            z += size[1] + rng.uniform(6, 30)

    def parked(self) -> None:
        """Parked cars and trucks; now and then a row of identical cars."""
        s, rng = self.scene, self.rng
        z_min, z_max = self.street_range()
        z = z_min + rng.uniform(0, 6)
        row_left, row_look, row_size, row_group = 0, None, None, -1
        while z < z_max:
            if rng.random() >= 0.5 * self.difficulty.density:
                z += rng.uniform(3.0, 9.0)
                continue
            kind = "truck" if row_left == 0 and rng.random() < 0.12 else "car"
            if kind == "car" and row_left == 0 and \
                    rng.random() < self.difficulty.lookalike_probability / 3:
                row_left, row_look = int(rng.integers(2, 4)), self.look("car")
                row_size = self.size("car")
                row_group = self.new_group()
            in_row = kind == "car" and row_left > 0
            size = row_size if in_row else self.size(kind)
            body = self.body(kind, s.street.lane_x("parking") + rng.uniform(-0.15, 0.15),
                             z + size[1] / 2, "forward", look=row_look if in_row else None,
                             size=size, group=row_group if in_row else -1)
            if self.add(body) and in_row:
                row_left -= 1
            z += size[1] + rng.uniform(0.8, 2.5)

    def traffic(self) -> None:
        """A lead vehicle in the ego lane (unless the event put a truck there), traffic in the
        right lane, oncoming vehicles all through the sequence, cyclists in the bike lane."""
        s, rng = self.scene, self.rng
        n, d = s.num_frames, self.difficulty.density
        mean_speed = float(s.ego_z[-1] - s.ego_z[0]) / max(1, n - 1)
        ego_lane_taken = any(b.kind in ("car", "truck") and abs(b.x[0]) < 1.0 for b in s.bodies)
        if not ego_lane_taken and rng.random() < 0.5 * d:
            kind = "truck" if rng.random() < 0.25 else "car"
            gap = rng.uniform(12.0, 30.0)
            speed = mean_speed * rng.uniform(0.97, 1.03)
            self.add(self.body(kind, 0.0, s.ego_z + gap + (speed - mean_speed) * self.t, "forward"))
        speed_right = mean_speed + rng.uniform(-0.3, 0.3)
        for _ in range(rng.poisson(1.6 * d)):
            kind = "truck" if rng.random() < 0.2 else "car"
            z0 = s.ego_z[0] + rng.uniform(-15.0, 70.0)
            self.add(self.body(kind, s.street.lane + rng.uniform(-0.2, 0.2),
                               z0 + speed_right * self.t, "forward"))
        z_min, z_max = self.street_range(100.0)
        span = z_max - z_min
        for _ in range(rng.poisson(d * (span + 2.0 * n) / 28.0)):
            kind = "truck" if rng.random() < 0.2 else "car"
            speed = rng.uniform(0.6, 1.3)
            z0 = rng.uniform(z_min + 5, z_max + speed * n)
            self.add(self.body(kind, -s.street.lane + rng.uniform(-0.2, 0.2), z0 - speed * self.t,
                               "backward"))
        for _ in range(rng.poisson(0.8 * d)):
            speed = rng.uniform(0.3, 0.6)
            self.add(self.body("cyclist", s.street.lane_x("bike"),
                               s.ego_z[0] + rng.uniform(6.0, 60.0) + speed * self.t, "forward"))

    def pedestrians(self) -> None:
        """People standing or walking on both sidewalks (now and then a group dressed alike)
        and a few crossing the street (some on bicycles)."""
        s, rng = self.scene, self.rng
        z_min, z_max = self.street_range()
        for side in (-1, 1):
            for _ in range(rng.poisson(self.difficulty.density * (z_max - z_min) / 14.0)):
                z0 = rng.uniform(z_min, z_max)
                speed = 0.0 if rng.random() < 0.2 else rng.choice([-1, 1]) * rng.uniform(0.07, 0.16)
                facing = "forward" if speed >= 0 else "backward"
                x = s.street.walk_x(side, rng)
                if rng.random() < self.difficulty.lookalike_probability / 4:
                    look, size = self.look("pedestrian"), self.size("pedestrian")
                    group = self.new_group()
                    mates = [self.body("pedestrian", x + rng.uniform(-0.3, 0.3),
                                       z0 + 1.1 * k + speed * self.t, facing, look=look, size=size,
                                       group=group)
                             for k in range(int(rng.integers(2, 4)))]
                    self.add(*mates)
                else:
                    self.add(self.body("pedestrian", x, z0 + speed * self.t, facing))
        for _ in range(rng.poisson(0.4 * self.difficulty.density)):
            side = rng.choice([-1, 1])
            x_from, x_to = s.street.walk_x(side, rng), s.street.walk_x(-side, rng)
            speed = rng.uniform(0.1, 0.25)
            t_start = rng.uniform(-20, s.num_frames)
            progress = np.clip(speed * (self.t - t_start) / abs(x_to - x_from), 0, 1)
            kind = "cyclist" if rng.random() < 0.25 else "pedestrian"
            self.add(self.body(kind, x_from + (x_to - x_from) * progress,
                               s.ego_z[0] + rng.uniform(15.0, 70.0),
                               "left" if x_to < x_from else "right"))


def _facades(rng: np.random.Generator, x: float, z_min: float, z_max: float,
             building_bands: int) -> Facades:
    starts, bands, heights = [z_min - 200.0], [-1], [0.0]
    z = z_min - rng.uniform(0, 20)
    while z < z_max:
        roll = rng.random()
        if roll < 0.7:
            length, band = rng.uniform(12, 45), int(rng.integers(building_bands))
            height = rng.uniform(7, 24)
        elif roll < 0.88:
            length, band, height = rng.uniform(8, 30), building_bands, rng.uniform(4, 9)
        else:
            length, band, height = rng.uniform(5, 18), -1, 0.0
        starts.append(z)
        bands.append(band)
        heights.append(height)
        z += length
    return Facades(x, np.array(starts), np.array(bands), np.array(heights))


def plan_scene(seed: int, num_frames: int, height: int, width: int, difficulty: Difficulty,
               min_area: int, building_bands: int) -> Scene:
    """The complete, deterministic plan of one sequence."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)
    lane = rng.uniform(3.2, 3.6)
    street = Street(lane, rng.uniform(1.2, 1.8), rng.uniform(2.1, 2.5), rng.uniform(3.3, 4.8),
                    rng.uniform(3.3, 4.8), rng.choice([0.0, rng.uniform(1, 4)]),
                    rng.choice([0.0, rng.uniform(1, 4)]))
    camera = Camera.for_image(height, width, rng.uniform(1.45, 1.7))
    speed = rng.uniform(0.45, 1.1)
    wobble = 1 + 0.15 * np.sin(2 * np.pi * t / rng.uniform(60, 160) + rng.uniform(0, 6.3))
    ego_z = np.concatenate([[0.0], np.cumsum(speed * wobble)[:-1]])
    yaw = rng.uniform(0.004, 0.02) * np.sin(2 * np.pi * t / rng.uniform(40, 120)
                                            + rng.uniform(0, 6.3))
    shift = np.round(camera.focal * yaw).astype(int)
    swing = rng.uniform(0.03, 0.2) * np.sin(2 * np.pi * t / rng.uniform(30, 90)
                                            + rng.uniform(0, 6.3))
    gain = rng.uniform(0.75, 1.15) * (1 + swing)
    tint = 1 + rng.uniform(-0.06, 0.06) * np.array([1.0, 0.0, -1.0])
    z_min, z_max = float(ego_z[0] - 5), float(ego_z[-1] + FAR_M)
    facades = (_facades(rng, street.facade_left, z_min, z_max, building_bands),
               _facades(rng, street.facade_right, z_min, z_max, building_bands))
    scene = Scene(seed, num_frames, camera, street, ego_z, shift, gain, tint,
                  float(rng.uniform(2.0, 6.0)), facades)
    planner = Planner(rng, scene, difficulty, min_area)
    if rng.random() < difficulty.event_probability:
        planner.occlusion_event()
    planner.furniture()
    planner.parked()
    planner.traffic()
    planner.pedestrians()
    _number_tracks(scene, min_area)
    return scene


def _number_tracks(scene: Scene, min_area: int) -> None:
    """Drop bodies never in view; number things 1.. in order of first appearance."""
    cam = scene.camera
    first = {}
    for index, body in enumerate(scene.bodies):
        box = screen_boxes(cam, body, scene.ego_z, scene.shift)
        with np.errstate(invalid="ignore"):
            w = np.clip(box[:, 2], 0, cam.width) - np.clip(box[:, 0], 0, cam.width)
            h = np.clip(box[:, 3], 0, cam.height) - np.clip(box[:, 1], 0, cam.height)
            seen = np.flatnonzero(np.nan_to_num(w * h) >= max(1, min_area // 2))
        if len(seen):
            first[index] = int(seen[0])
    kept = [i for i in sorted(first, key=lambda i: (first[i], i))]
    bodies = [scene.bodies[i] for i in kept]
    next_id = 1
    for body in bodies:
        if body.is_thing:
            body.track_id = next_id
            next_id += 1
    scene.bodies = [b for b in bodies if not b.is_thing or b.track_id < 1000]


def draw_order(bodies: list[Body], ego_z: float, t: int) -> list[Body]:
    """Bodies sorted back to front for painting.

    Boxes whose ranges along the street overlap are separated sideways, and the one
    nearer the camera's line of sight is in front; otherwise the nearer front face wins.
    """
    boxes = {}
    for body in bodies:
        x0, x1, z0, z1 = relative_box(body, ego_z, t)
        trim = (body.size[0] - footprint_width(body)) / 2
        boxes[id(body)] = (x0 + trim, x1 - trim, z0, z1)

    def lateral(box) -> float:
        x0, x1 = box[0], box[1]
        return 0.0 if x0 <= 0 <= x1 else min(abs(x0), abs(x1))

    def compare(a: Body, b: Body) -> int:
        ba, bb = boxes[id(a)], boxes[id(b)]
        if ba[2] < bb[3] and bb[2] < ba[3] and (ba[1] <= bb[0] or bb[1] <= ba[0]):
            return -1 if lateral(ba) > lateral(bb) else 1
        return -1 if ba[2] > bb[2] else (1 if ba[2] < bb[2] else 0)

    return sorted(bodies, key=functools.cmp_to_key(compare))
