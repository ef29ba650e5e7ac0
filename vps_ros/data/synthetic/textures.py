"""Surface textures of the synthetic street, made once per sequence from its seed.

Every texture is an array that the renderer samples (``cv2.remap`` or crops), so a frame
costs a few whole-array operations however detailed the surfaces are. Textures that the
camera slides over (the road along the driving direction, façades along the street) are
periodic along that direction, so sampling with a wrapped coordinate shows no seam.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Sampling densities of the atlases (texture pixels per metre).
GROUND_PX_PER_M = 12
GROUND_PERIOD_M = 36.0          # the road repeats every 36 m: 4 periods of the 9 m lane dashes
GROUND_HALF_WIDTH_M = 30.0
FACADE_PX_PER_M = 8
FACADE_PERIOD_M = 24.0
FACADE_MAX_HEIGHT_M = 30.0
BUILDING_VARIANTS = 4           # façade atlas rows: building variants, then the tree line


def periodic_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Smooth value noise in [-1, 1] that tiles seamlessly in both axes.

    A random grid of ``shape / cell`` values is padded by wrapping and upsampled with
    bicubic interpolation; cutting out exactly one period keeps both edges continuous.
    """
    rows, cols = -(-shape[0] // cell), -(-shape[1] // cell)
    grid = rng.uniform(-1.0, 1.0, (rows, cols)).astype(np.float32)
    padded = np.pad(grid, 2, mode="wrap")
    big = cv2.resize(padded, ((cols + 4) * cell, (rows + 4) * cell), interpolation=cv2.INTER_CUBIC)
    out = big[2 * cell:2 * cell + shape[0], 2 * cell:2 * cell + shape[1]]
    return np.clip(out, -1.0, 1.0)


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, ...]
                  ) -> np.ndarray:
    """Sum of periodic noise octaves (coarse first), normalised to about [-1, 1]."""
    total = np.zeros(shape, np.float32)
    weight = 1.0
    norm = 0.0
    for cell in cells:
        total += weight * periodic_noise(rng, shape, cell)
        norm += weight
        weight *= 0.55
    return total / norm


def _shade(base: np.ndarray, noise: np.ndarray, amount: float) -> np.ndarray:
    """``base`` colour(s) (..., 3) modulated by ``noise`` (...,) in [-1, 1]."""
    return np.clip(base * (1.0 + amount * noise[..., None]), 0, 255)


@dataclass(frozen=True)
class GroundLayout:
    """Lateral bands of the ground, metres (x right of the camera, negative left)."""

    road_left: float
    road_right: float
    outer_left: float          # outer edge of the left sidewalk
    outer_right: float
    dashed_lines: tuple[float, ...]
    solid_lines: tuple[float, ...]


def ground_atlas(rng: np.random.Generator, layout: GroundLayout) -> tuple[np.ndarray, np.ndarray]:
    """(sharp, blurred) RGB atlas of the ground: columns = lateral x, rows = distance along
    the street (periodic). The blurred copy serves far rows, where one image pixel spans
    many texture pixels and the sharp atlas would alias."""
    rows = int(GROUND_PERIOD_M * GROUND_PX_PER_M)
    cols = int(2 * GROUND_HALF_WIDTH_M * GROUND_PX_PER_M)
    x = (np.arange(cols) + 0.5) / GROUND_PX_PER_M - GROUND_HALF_WIDTH_M
    z = (np.arange(rows) + 0.5) / GROUND_PX_PER_M
    fine = fractal_noise(rng, (rows, cols), (24, 6, 2))
    coarse = periodic_noise(rng, (rows, cols), 72)

    asphalt = np.array(rng.uniform(78, 100) * np.array([1.0, 1.0, 1.04]), np.float32)
    paving = np.array(rng.uniform(140, 170) * np.array([1.02, 0.98, 0.95]), np.float32)
    grass = np.array([rng.uniform(85, 110), rng.uniform(115, 140), rng.uniform(50, 70)], np.float32)

    on_road = (x >= layout.road_left) & (x <= layout.road_right)
    on_walk = ((x >= layout.outer_left) & (x < layout.road_left)) | \
              ((x > layout.road_right) & (x <= layout.outer_right))
    atlas = np.empty((rows, cols, 3), np.float32)
    atlas[:, on_road] = _shade(asphalt, 0.6 * fine[:, on_road] + 0.4 * coarse[:, on_road], 0.14)
    atlas[:, on_walk] = _shade(paving, 0.7 * fine[:, on_walk], 0.08)
    rest = ~(on_road | on_walk)
    atlas[:, rest] = _shade(grass, 0.5 * fine[:, rest] + 0.5 * coarse[:, rest], 0.3)

    # Paving slabs: darker joints every 0.6 m in both directions; a light curb stone.
    joint_z = (z % 0.6) < 0.06
    joint_x = ((x - layout.road_right) % 0.6 < 0.06) | ((layout.road_left - x) % 0.6 < 0.06)
    atlas[np.ix_(joint_z, on_walk)] *= 0.8
    atlas[:, on_walk & joint_x] *= 0.8
    curb = ((x > layout.road_right) & (x < layout.road_right + 0.2)) | \
           ((x < layout.road_left) & (x > layout.road_left - 0.2))
    atlas[:, curb] = _shade(paving * 1.18, fine[:, curb], 0.05)

    # Lane markings: 3 m dashes every 9 m, solid edge lines; slightly worn paint.
    paint = _shade(np.array([228, 228, 222], np.float32), fine, 0.06)
    dash = (z % 9.0) < 3.0
    for x_line in layout.dashed_lines:
        on_line = np.abs(x - x_line) < 0.07
        atlas[np.ix_(dash, on_line)] = paint[np.ix_(dash, on_line)]
    for x_line in layout.solid_lines:
        on_line = np.abs(x - x_line) < 0.07
        atlas[:, on_line] = paint[:, on_line]
    sharp = atlas.astype(np.uint8)
    pad = 24      # wrap rows around before blurring so the blurred atlas stays periodic
    wrapped = np.pad(sharp, ((pad, pad), (0, 0), (0, 0)), mode="wrap")
    blurred = cv2.GaussianBlur(wrapped, (0, 0), sigmaX=3.0, sigmaY=6.0)[pad:-pad]
    return sharp, np.ascontiguousarray(blurred)


def facade_atlas(rng: np.random.Generator) -> np.ndarray:
    """RGB atlas of the vertical surfaces beside the street, stacked vertically:
    BUILDING_VARIANTS building façades (walls, window grid, shop fronts) and one tree line.

    Each band has rows = height above ground (top row = FACADE_MAX_HEIGHT_M) and columns =
    distance along the street (periodic with FACADE_PERIOD_M).
    """
    rows = int(FACADE_MAX_HEIGHT_M * FACADE_PX_PER_M)
    cols = int(FACADE_PERIOD_M * FACADE_PX_PER_M)
    height = FACADE_MAX_HEIGHT_M - (np.arange(rows) + 0.5) / FACADE_PX_PER_M   # metres, per row
    along = (np.arange(cols) + 0.5) / FACADE_PX_PER_M
    bands = []
    walls = [(196, 178, 150), (150, 150, 155), (160, 92, 70), (215, 210, 200), (120, 112, 100),
             (185, 160, 120)]
    for _ in range(BUILDING_VARIANTS):
        wall = np.array(walls[rng.integers(len(walls))], np.float32) * rng.uniform(0.85, 1.1)
        noise = fractal_noise(rng, (rows, cols), (16, 4, 1))
        band = _shade(wall, noise, 0.1)
        floor_h = rng.uniform(2.9, 3.4)
        spacing = FACADE_PERIOD_M / rng.choice([6, 8, 10])
        win_w = spacing * rng.uniform(0.35, 0.6)
        glass = np.array([rng.uniform(40, 70), rng.uniform(55, 80), rng.uniform(75, 105)],
                         np.float32)
        in_col = (along % spacing) < win_w
        level = height % floor_h
        in_row = (level > 0.9) & (level < 0.9 + floor_h * 0.45) & (height > 3.6)
        window = in_row[:, None] & in_col[None, :]
        sky_glint = np.clip((level[:, None] - 0.9) / (floor_h * 0.45), 0, 1)
        band[window] = _shade(glass, (sky_glint * 1.2 - 0.4 + 0.3 * noise)[window], 0.35)
        shop = (height > 0.4) & (height < 2.8)
        shop_col = (along % (2 * spacing)) < 1.6 * spacing
        shop_window = shop[:, None] & shop_col[None, :]
        band[shop_window] = _shade(glass * 0.8, noise[shop_window], 0.3)
        band[(height > 3.0) & (height < 3.3)] *= 0.75          # a cornice between shop and flats
        bands.append(band)
    leaves = np.array([rng.uniform(45, 70), rng.uniform(85, 110), rng.uniform(30, 45)], np.float32)
    foliage = fractal_noise(rng, (rows, cols), (12, 4, 1))
    bands.append(_shade(leaves, foliage, 0.45))
    return np.concatenate(bands, axis=0).astype(np.uint8)


def sky_canvas(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """RGB sky (gradient to a paler horizon, soft clouds) for ``rows`` x ``cols`` pixels."""
    overcast = rng.random() < 0.35
    top = np.array([150, 155, 165] if overcast else [70, 120, 200], np.float32)
    top = top * rng.uniform(0.9, 1.1)
    bottom = np.array([200, 202, 205] if overcast else [175, 200, 228], np.float32)
    t = np.linspace(0.0, 1.0, rows, dtype=np.float32)[:, None, None]
    sky = np.broadcast_to(top * (1 - t) + bottom * t, (rows, cols, 3)).copy()
    clouds = fractal_noise(rng, (rows, cols), (max(8, cols // 8), max(4, cols // 32)))
    cover = np.clip((clouds - rng.uniform(-0.1, 0.4)) * 2.5, 0, 1)[..., None]
    sky = sky * (1 - 0.7 * cover) + np.array([240, 240, 242], np.float32) * 0.7 * cover
    return sky.astype(np.uint8)


def surface_noise(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """uint8 luminance multipliers around 128 (= x1.0) for the surfaces of objects."""
    noise = fractal_noise(rng, (size, size), (16, 4, 1))
    return np.clip(128 + 22 * noise, 0, 255).astype(np.uint8)


def sensor_noise(rng: np.random.Generator, rows: int, cols: int, sigma: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) parts of Gaussian sensor noise as uint8 arrays, so that a frame
    adds one part and subtracts the other with saturating uint8 arithmetic."""
    noise = np.clip(rng.normal(0.0, sigma, (rows, cols, 3)), -60, 60).astype(np.int16)
    return np.maximum(noise, 0).astype(np.uint8), np.maximum(-noise, 0).astype(np.uint8)
