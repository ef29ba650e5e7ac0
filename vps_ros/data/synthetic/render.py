"""Drawing one frame of a planned synthetic drive.

The frame is built in layers, all with whole-array operations: sky and ground (textures
sampled through maps precomputed per sequence, shifted by the camera's yaw and slid by its
forward motion), façades and tree lines beside the street (one ``cv2.remap`` per frame),
then objects back to front (polygons drawn with OpenCV into small patches), and finally
illumination, a little blur and sensor noise. Alongside the image the renderer fills a
code map: stuff class id, or ``THING_CODE + track id`` for things, from which the panoptic
ground truth and the visible area of every track follow exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import textures as tex
from .scene import (FAR_M, KIND_CLASS, NEAR_M, Body, Scene, draw_order, relative_box,
                          screen_boxes)
from .shapes import View, parts

THING_CODE = 16            # codes below are stuff class ids; THING_CODE + track id: things
GAIT_PHASES = 12           # poses per walking or pedalling cycle
_FAR_GROUND_M = 25.0       # ground rows farther than this sample the blurred atlas
_TEXTURED_AREA = 150       # smaller objects are too small to show a surface texture


@dataclass
class Frame:
    image: np.ndarray          # (H, W, 3) uint8 RGB
    code: np.ndarray           # (H, W) uint16: stuff class id or THING_CODE + track id
    amodal: dict[int, int]     # track id -> pixels it would cover alone (inside the image)


class Renderer:
    def __init__(self, scene: Scene, class_ids: dict[str, int], min_area: int) -> None:
        self.scene = scene
        self.ids = class_ids
        self.min_area = min_area
        cam = scene.camera
        rng = np.random.default_rng([scene.seed, 1])
        street = scene.street
        layout = tex.GroundLayout(street.road_left, street.road_right, street.outer_left,
                                  street.outer_right, (-street.lane / 2, street.lane / 2),
                                  (street.road_left + 0.25, 1.5 * street.lane))
        self.ground_sharp, self.ground_blurred = tex.ground_atlas(rng, layout)
        self.facade_atlas = tex.facade_atlas(rng)
        self.surface = tex.surface_noise(rng)
        self.margin = int(np.abs(scene.shift).max()) + 1
        wide = cam.width + 2 * self.margin
        self._ground_maps(wide)
        self.sky = tex.sky_canvas(rng, self.ground_row, wide)
        self.noise = tex.sensor_noise(rng, cam.height + 8, cam.width + 8, scene.noise_sigma)
        self.wobble = tex.periodic_noise(rng, (8, 512), 16)[0]     # tree-line crown, 0.5 m steps
        self.in_view = {id(b): self._in_view(b) for b in scene.bodies}
        self._shapes: dict[tuple[int, View, int], tuple[np.ndarray, list]] = {}

    # -- precomputation ---------------------------------------------------------------
    def _ground_maps(self, wide: int) -> None:
        cam, street = self.scene.camera, self.scene.street
        below = np.arange(cam.height) + 0.5 - cam.horizon
        self.ground_row = int(np.argmax(below > 0.5))
        depth = cam.focal * cam.mount_height / below[self.ground_row:]
        ray = (np.arange(wide) + 0.5 - self.margin - cam.cx) / cam.focal
        x = ray[None, :] * depth[:, None]
        classes = np.full(x.shape, self.ids["terrain"], np.uint16)
        walk = (x >= street.outer_left) & (x <= street.outer_right)
        classes[walk] = self.ids["sidewalk"]
        classes[(x >= street.road_left) & (x <= street.road_right)] = self.ids["road"]
        self.ground_class = classes
        cols = self.ground_sharp.shape[1]
        self.ground_x = np.clip((x + tex.GROUND_HALF_WIDTH_M) * tex.GROUND_PX_PER_M - 0.5,
                                0, cols - 1).astype(np.float32)
        self.ground_depth = depth
        self.far_rows = int(np.sum(depth > _FAR_GROUND_M))

    def _in_view(self, body: Body) -> np.ndarray:
        cam = self.scene.camera
        box = screen_boxes(cam, body, self.scene.ego_z, self.scene.shift)
        with np.errstate(invalid="ignore"):
            return ((box[:, 2] > -1) & (box[:, 0] < cam.width + 1) & (box[:, 3] > -1)
                    & (box[:, 1] < cam.height + 1))

    # -- one frame --------------------------------------------------------------------
    def render(self, t: int) -> Frame:
        cam, scene = self.scene.camera, self.scene
        shift = int(scene.shift[t])
        image = np.empty((cam.height, cam.width, 3), np.uint8)
        code = np.empty((cam.height, cam.width), np.uint16)
        self._background(t, shift, image, code)
        bodies = [b for b in scene.bodies if self.in_view[id(b)][t]]
        amodal = self._objects(draw_order(bodies, float(scene.ego_z[t]), t), t, shift, image, code)
        return Frame(self._camera_effects(t, image), code, amodal)

    def _background(self, t: int, shift: int, image: np.ndarray, code: np.ndarray) -> None:
        cam = self.scene.camera
        start = self.margin - shift
        cols = slice(start, start + cam.width)
        g = self.ground_row
        image[:g] = self.sky[:, cols]
        code[:g] = self.ids["sky"]
        code[g:] = self.ground_class[:, cols]
        map_x = np.ascontiguousarray(self.ground_x[:, cols])
        period = self.ground_sharp.shape[0]
        row_y = ((self.ground_depth + self.scene.ego_z[t]) * tex.GROUND_PX_PER_M) % period - 0.5
        map_y = np.repeat(row_y.astype(np.float32)[:, None], cam.width, axis=1)
        f = self.far_rows
        image[g:g + f] = cv2.remap(self.ground_blurred, map_x[:f], map_y[:f], cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_WRAP)
        image[g + f:] = cv2.remap(self.ground_sharp, map_x[f:], map_y[f:], cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_WRAP)
        self._facades(t, shift, image, code)

    def _facades(self, t: int, shift: int, image: np.ndarray, code: np.ndarray) -> None:
        """Building fronts and tree lines: vertical planes parallel to the street."""
        cam, scene = self.scene.camera, self.scene
        ray = (np.arange(cam.width) + 0.5 - cam.cx - shift) / cam.focal
        depth = np.full(cam.width, np.inf)
        band = np.full(cam.width, -1)
        height = np.zeros(cam.width)
        along = np.zeros(cam.width)
        for side in scene.facades:
            cols = ray * np.sign(side.x) > 1e-3
            d = side.x / ray[cols]
            z = d + scene.ego_z[t]
            k = np.searchsorted(side.start, z, side="right") - 1
            depth[cols], band[cols], height[cols], along[cols] = d, side.band[k], side.height[k], z
        trees = band == tex.BUILDING_VARIANTS
        height = height + trees * 1.5 * self.wobble[(along * 2.0).astype(int) % len(self.wobble)]
        valid = (band >= 0) & (height > 0) & (depth < FAR_M)
        if not valid.any():
            return
        f, hc, hor = cam.focal, cam.mount_height, cam.horizon
        depth = np.where(valid, depth, 1.0).astype(np.float32)
        top = np.where(valid, hor + f * (hc - height) / depth, np.inf).astype(np.float32)
        bottom = np.where(valid, hor + f * hc / depth, -np.inf).astype(np.float32)
        r0 = max(0, int(top.min()))
        r1 = min(cam.height, int(np.ceil(bottom.max())))
        rows = (np.arange(r0, r1, dtype=np.float32) + 0.5)[:, None]
        mask = (rows >= top[None, :]) & (rows < bottom[None, :])
        band_rows = int(tex.FACADE_MAX_HEIGHT_M * tex.FACADE_PX_PER_M)
        atlas_cols = self.facade_atlas.shape[1]
        column_x = ((along * tex.FACADE_PX_PER_M) % atlas_cols - 0.5).astype(np.float32)
        map_x = np.repeat(column_x[None, :], r1 - r0, axis=0)
        base = (np.maximum(band, 0) * band_rows).astype(np.float32)
        y = (np.float32((tex.FACADE_MAX_HEIGHT_M - hc) * tex.FACADE_PX_PER_M)
             + (rows - np.float32(hor)) * (depth * np.float32(tex.FACADE_PX_PER_M / f))[None, :])
        map_y = np.clip(y, 0.5, band_rows - 1.5) + (base - 0.5)[None, :]
        facade = cv2.remap(self.facade_atlas, map_x, map_y, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_WRAP)
        np.copyto(image[r0:r1], facade, where=mask[..., None])
        classes = np.where(trees, self.ids["vegetation"], self.ids["building"]).astype(np.uint16)
        np.copyto(code[r0:r1], np.broadcast_to(classes, mask.shape), where=mask)

    def _shape(self, body: Body, view: View, t: int) -> tuple[np.ndarray, list]:
        """Stacked part points and (start, stop, part) of a body; animated bodies use one
        of GAIT_PHASES poses per cycle, so every shape is built once per sequence."""
        phase = 0
        if body.gait is not None:
            phase = int(body.gait[t] / (2 * np.pi) * GAIT_PHASES) % GAIT_PHASES
        key = (id(body), view, phase)
        if key not in self._shapes:
            shape = parts(body, view, phase * 2 * np.pi / GAIT_PHASES)
            bounds = np.cumsum([0] + [len(p.points) for p in shape])
            slices = [(int(a), int(b), p) for a, b, p in zip(bounds[:-1], bounds[1:], shape)]
            self._shapes[key] = (np.concatenate([p.points for p in shape]), slices)
        return self._shapes[key]

    def _objects(self, bodies: list[Body], t: int, shift: int, image: np.ndarray,
                 code: np.ndarray) -> dict[int, int]:
        """Paint ``bodies`` back to front; returns each thing's area inside the image as if
        nothing were in front of it. All part points of the frame are projected at once.

        Objects whose box is smaller than the minimum visible area are not drawn at all,
        so image and ground truth agree on them too.
        """
        cam = self.scene.camera
        ego = float(self.scene.ego_z[t])
        shapes, points, spans = [], [], []
        for body in bodies:
            x0, x1, z0, z1 = (float(v) for v in relative_box(body, ego, t))
            h = body.size[2]
            view = View(0 if x0 > 0 else (1 if x1 < 0 else None), cam.mount_height > h)
            body_points, shape = self._shape(body, view, t)
            shapes.append(shape)
            points.append(body_points)
            spans.append((x0, x1 - x0, h, z0, z1 - z0, len(body_points)))
        if not bodies:
            return {}
        span = np.array(spans)
        counts = span[:, 5].astype(int)
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        p = np.concatenate(points)
        z = np.repeat(span[:, 3], counts) + p[:, 2] * np.repeat(span[:, 4], counts)
        near_ok = np.minimum.reduceat(z, start) > NEAR_M
        z = np.maximum(z, NEAR_M)
        u, v = cam.project(np.repeat(span[:, 0], counts) + p[:, 0] * np.repeat(span[:, 1], counts),
                           p[:, 1] * np.repeat(span[:, 2], counts), z, shift)
        left = np.clip(np.minimum.reduceat(u, start), 0, cam.width).astype(int)
        top = np.clip(np.minimum.reduceat(v, start), 0, cam.height).astype(int)
        right = np.clip(np.maximum.reduceat(u, start) + 1, 0, cam.width).astype(int)
        bottom = np.clip(np.maximum.reduceat(v, start) + 1, 0, cam.height).astype(int)
        fixed = np.empty((len(u), 2), np.int32)       # 1/16 pixel fixed point for cv2 (shift 4)
        fixed[:, 0] = (u - np.repeat(left, counts)) * 16 + 0.5
        fixed[:, 1] = (v - np.repeat(top, counts)) * 16 + 0.5
        px_per_m = cam.focal / (np.add.reduceat(z, start) / counts)
        big = (right - left) * (bottom - top) >= self.min_area
        amodal = {}
        for k in np.flatnonzero(near_ok & big):
            body = bodies[k]
            box = (int(left[k]), int(top[k]), int(right[k]), int(bottom[k]))
            area = self._paint(body, shapes[k], fixed[start[k]:start[k] + counts[k]], box,
                               float(px_per_m[k]), image, code)
            if body.is_thing and area:
                amodal[body.track_id] = area
        return amodal

    def _paint(self, body: Body, shape: list, fixed: np.ndarray, box: tuple[int, int, int, int],
               px_per_m: float, image: np.ndarray, code: np.ndarray) -> int:
        """Draw one object's parts into a patch and over the frame; returns its area."""
        left, top, right, bottom = box
        patch = np.zeros((bottom - top, right - left, 3), np.uint8)
        for start, stop, part in shape:
            pts = fixed[start:stop]
            if part.stroke:
                width = max(1, int(round(part.stroke * px_per_m)))
                cv2.polylines(patch, [pts], part.closed, part.color, width, cv2.LINE_8, 4)
            else:
                cv2.fillPoly(patch, [pts], part.color, cv2.LINE_8, 4)
        covered = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY) > 0    # part colours are never dark
        area = int(np.count_nonzero(covered))
        if not area:
            return 0
        if area >= _TEXTURED_AREA:
            texture = self._texture(body, patch.shape[1], patch.shape[0])
            patch = cv2.multiply(patch, cv2.merge([texture] * 3), scale=1 / 128.0)
        np.copyto(image[top:bottom, left:right], patch, where=covered[..., None])
        value = self.ids[KIND_CLASS[body.kind]] if not body.is_thing else THING_CODE + body.track_id
        np.copyto(code[top:bottom, left:right], value, where=covered)
        return area

    def _texture(self, body: Body, width: int, height: int) -> np.ndarray:
        """Surface texture of a body, fixed to it (it scales and moves with the body)."""
        k = body.look.texture
        oy, ox = k % 64, (k // 64) % 64
        tile = self.surface[oy:oy + 64, ox:ox + 64]
        if body.kind in ("tree", "hedge"):
            tile = cv2.addWeighted(tile, 2.0, tile, 0.0, -128.0)
        return cv2.resize(tile, (width, height), interpolation=cv2.INTER_LINEAR)

    def _camera_effects(self, t: int, image: np.ndarray) -> np.ndarray:
        """Illumination and colour cast, lens blur (more while the camera turns), noise."""
        scene = self.scene
        gain = scene.gain[t] * scene.tint
        levels = np.arange(256, dtype=np.float32)[:, None] / 255.0
        lut = np.clip(255.0 * (levels ** 1.05) * gain[None, :] + 4.0, 0, 255).astype(np.uint8)
        image = cv2.LUT(image, lut.reshape(256, 1, 3))
        image = cv2.GaussianBlur(image, (3, 3), 0.6)
        turn = abs(int(scene.shift[t]) - int(scene.shift[max(t - 1, 0)]))
        if turn >= 1:
            image = cv2.blur(image, (1 + min(turn, 2) * 2, 1))
        rng = np.random.default_rng([scene.seed, 2, t])
        oy, ox = rng.integers(0, 9, 2)
        h, w = image.shape[:2]
        positive, negative = self.noise
        image = cv2.add(image, positive[oy:oy + h, ox:ox + w])
        return cv2.subtract(image, negative[oy:oy + h, ox:ox + w])
