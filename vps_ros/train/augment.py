"""Photometric and geometric augmentation of a training frame (image + segment ids)."""
from __future__ import annotations

import cv2
import numpy as np

from .config import AugmentConfig
from .frames import TrainFrame

# Padding colour (the ImageNet mean) for crops larger than the rescaled image.
_PAD_RGB = (124, 116, 104)


def augment(frame: TrainFrame, crop: tuple[int, int], scale: tuple[float, float],
            config: AugmentConfig, rng: np.random.Generator,
            center: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Random rescale, crop (padding with void), horizontal flip and colour jitter.

    With ``center`` (y, x in ``frame``'s pixels) the crop holds that point, at a random
    place inside it (a focus crop). Returns the (crop_h, crop_w, 3) uint8 image and
    (crop_h, crop_w) int16 segment ids.
    """
    factor = rng.uniform(*scale)
    image, ids = _rescale(frame.image, frame.ids, factor)
    if center is None:
        image, ids = _crop(image, ids, crop, rng)
    else:
        image, ids = _crop_around(image, ids, crop, (center[0] * factor, center[1] * factor),
                                  rng)
    if rng.random() < config.flip:
        image, ids = image[:, ::-1], ids[:, ::-1]
    return _jitter(image, config, rng), np.ascontiguousarray(ids)


def _rescale(image: np.ndarray, ids: np.ndarray, factor: float
             ) -> tuple[np.ndarray, np.ndarray]:
    h, w = ids.shape
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    if size == (w, h):
        return image, ids
    return (cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else
                       cv2.INTER_LINEAR),
            cv2.resize(ids, size, interpolation=cv2.INTER_NEAREST))


def _crop(image: np.ndarray, ids: np.ndarray, crop: tuple[int, int], rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    ch, cw = crop
    h, w = ids.shape
    if h < ch or w < cw:
        pad_h, pad_w = max(0, ch - h), max(0, cw - w)
        top, left = rng.integers(0, pad_h + 1), rng.integers(0, pad_w + 1)
        borders = (int(top), int(pad_h - top), int(left), int(pad_w - left))
        image = cv2.copyMakeBorder(image, *borders, cv2.BORDER_CONSTANT, value=_PAD_RGB)
        ids = cv2.copyMakeBorder(ids, *borders, cv2.BORDER_CONSTANT, value=-1)
        h, w = ids.shape
    y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    return image[y0:y0 + ch, x0:x0 + cw], ids[y0:y0 + ch, x0:x0 + cw]


def _crop_around(image: np.ndarray, ids: np.ndarray, crop: tuple[int, int],
                 center: tuple[float, float], rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A crop holding ``center`` between 20 % and 80 % of its height and width (as near
    as the image's borders allow); images smaller than the crop are cropped as usual."""
    ch, cw = crop
    h, w = ids.shape
    if h < ch or w < cw:
        return _crop(image, ids, crop, rng)
    y0 = int(np.clip(round(center[0] - rng.uniform(0.2, 0.8) * ch), 0, h - ch))
    x0 = int(np.clip(round(center[1] - rng.uniform(0.2, 0.8) * cw), 0, w - cw))
    return image[y0:y0 + ch, x0:x0 + cw], ids[y0:y0 + ch, x0:x0 + cw]


def _jitter(image: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    pixels = image.astype(np.float32)
    pixels *= 1.0 + rng.uniform(-config.brightness, config.brightness)
    mean = pixels.mean()
    pixels = (pixels - mean) * (1.0 + rng.uniform(-config.contrast, config.contrast)) + mean
    gray = pixels.mean(axis=2, keepdims=True)
    pixels = (pixels - gray) * (1.0 + rng.uniform(-config.saturation, config.saturation)) + gray
    return np.clip(pixels, 0, 255).astype(np.uint8)
