"""Small hand-made videos with exact panoptic ground truth, for the model and training
tests: textured stuff bands (sky, building, vegetation, road) and moving things (cars
as rectangles, pedestrians as ellipses) that keep their instance ids across frames."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vps_ros.data.frames import VideoFrame
from vps_ros.model.config import ModelConfig
from vps_ros.types import ClassTable

LABEL_DIVISOR = 1000
CLASSES = ClassTable.builtin("synthetic")
SKY, BUILDING, VEGETATION, ROAD = (CLASSES.id_of(n) for n in
                                   ("sky", "building", "vegetation", "road"))
CAR, PEDESTRIAN = CLASSES.id_of("car"), CLASSES.id_of("pedestrian")

# A network small enough for tests to run in seconds.
SMALL = ModelConfig(input_height=64, input_width=128, widths=[8, 16, 24, 32], blocks=[1, 1, 1, 1],
                    decoder_widths=[32, 24, 16, 8, 8], num_queries=12, query_dim=32, num_heads=2,
                    ffn_dim=32, rounds=[1, 2, 1, 1], mask_dim=16, embed_dim=8)


@dataclass
class Toy:
    class_id: int
    instance: int
    x: float
    y: float
    w: float
    h: float
    vx: float
    color: tuple[int, int, int]


class ToyVideos:
    """A VideoDataset: ``num_sequences`` sequences of ``num_frames`` frames."""

    classes = CLASSES
    label_divisor = LABEL_DIVISOR

    def __init__(self, num_sequences: int = 2, num_frames: int = 4, height: int = 128,
                 width: int = 256, seed: int = 0, things: int = 4) -> None:
        self.num_sequences, self.num_frames = num_sequences, num_frames
        self.height, self.width, self.seed, self.things = height, width, seed, things

    def __iter__(self):
        for s in range(self.num_sequences):
            rng = np.random.default_rng([self.seed, s])
            layout = self._layout(rng)
            toys = [self._toy(rng, i + 1) for i in range(rng.integers(1, self.things + 1))]
            noise = rng.normal(0, 12, (self.height, self.width * 2, 3))
            for t in range(self.num_frames):
                image, panoptic = self._render(layout, toys, noise, t)
                yield VideoFrame(f"toy{self.seed}_{s}", t, t * 100_000_000, image, panoptic)

    def _layout(self, rng) -> tuple[int, int]:
        horizon = int(self.height * rng.uniform(0.35, 0.5))
        return horizon, int(self.width * rng.uniform(0.3, 0.7))

    def _toy(self, rng, instance: int) -> Toy:
        h, w = self.height, self.width
        if rng.random() < 0.5:
            size = rng.uniform(0.12, 0.25) * h
            return Toy(CAR, instance, rng.uniform(0, w), rng.uniform(0.55, 0.8) * h,
                       size * 1.8, size, rng.uniform(-4, 4), (20, 30, int(rng.integers(120, 170))))
        size = rng.uniform(0.15, 0.3) * h
        return Toy(PEDESTRIAN, instance, rng.uniform(0, w), rng.uniform(0.5, 0.75) * h,
                   size * 0.45, size, rng.uniform(-2, 2), (int(rng.integers(180, 230)), 30, 50))

    def _render(self, layout, toys, noise, t) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.height, self.width
        horizon, split = layout
        classes = np.empty((h, w), np.int32)
        classes[:horizon] = SKY
        classes[horizon // 2:horizon, :split] = BUILDING
        classes[horizon // 2:horizon, split:] = VEGETATION
        classes[horizon:] = ROAD
        colors = {SKY: (110, 160, 220), BUILDING: (90, 90, 95), VEGETATION: (70, 130, 40),
                  ROAD: (120, 90, 120)}
        image = np.zeros((h, w, 3), np.float32)
        for class_id, color in colors.items():
            image[classes == class_id] = color
        shift = (t * 3) % w
        image += noise[:, shift:shift + w]
        panoptic = classes * LABEL_DIVISOR
        for toy in sorted(toys, key=lambda toy: toy.y + toy.h):  # nearer things on top
            mask = np.zeros((h, w), np.uint8)
            cx, cy = toy.x + toy.vx * t, toy.y
            if toy.class_id == CAR:
                cv2.rectangle(mask, (int(cx - toy.w / 2), int(cy - toy.h)),
                              (int(cx + toy.w / 2), int(cy)), 1, -1)
            else:
                cv2.ellipse(mask, (int(cx), int(cy - toy.h / 2)),
                            (int(toy.w / 2), int(toy.h / 2)), 0, 0, 360, 1, -1)
            inside = mask.astype(bool)
            image[inside] = np.array(toy.color, np.float32) + noise[:h, :w][inside] * 0.5
            panoptic[inside] = toy.class_id * LABEL_DIVISOR + toy.instance
        return np.clip(image, 0, 255).astype(np.uint8), panoptic.astype(np.int32)
