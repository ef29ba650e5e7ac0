"""The one panoptic encoding helper of the package.

Panoptic label maps are int32 images ``class_id * label_divisor + instance_id``
(docs/architecture.md): stuff and crowd pixels have instance 0, void pixels are
``void_id * label_divisor``. This module converts between that form, (class,
instance) pairs, the COCO / Cityscapes-VPS RGB id encoding (id = R + 256 G + 256^2 B)
and the KITTI-STEP PNG encoding (R = class, 256 G + B = instance).
"""
from __future__ import annotations

import numpy as np

DEFAULT_LABEL_DIVISOR = 1000
DEFAULT_VOID_ID = 255
_INT32_MAX = np.iinfo(np.int32).max


def check_divisor(label_divisor: int, max_class_id: int = DEFAULT_VOID_ID) -> None:
    """Raise ValueError unless every class up to ``max_class_id`` fits int32."""
    if label_divisor < 2:
        raise ValueError(f"label_divisor must be >= 2, got {label_divisor}")
    if (max_class_id + 1) * label_divisor - 1 > _INT32_MAX:
        raise ValueError(f"label_divisor {label_divisor} overflows int32 for class id "
                         f"{max_class_id}")


def encode(class_map: np.ndarray, instance_map: np.ndarray,
           label_divisor: int = DEFAULT_LABEL_DIVISOR) -> np.ndarray:
    """``class * label_divisor + instance`` as int32."""
    if np.any(instance_map >= label_divisor) or np.any(instance_map < 0):
        raise ValueError(f"instance ids must lie in 0..{label_divisor - 1}")
    return (class_map.astype(np.int64) * label_divisor + instance_map).astype(np.int32)


def decode(panoptic: np.ndarray, label_divisor: int = DEFAULT_LABEL_DIVISOR
           ) -> tuple[np.ndarray, np.ndarray]:
    """(class_map, instance_map) of a panoptic map."""
    panoptic = panoptic.astype(np.int64, copy=False)
    return (panoptic // label_divisor).astype(np.int32), (panoptic % label_divisor).astype(np.int32)


def from_segments(segment_map: np.ndarray, class_ids: np.ndarray, instance_ids: np.ndarray,
                  label_divisor: int = DEFAULT_LABEL_DIVISOR,
                  void_id: int = DEFAULT_VOID_ID) -> np.ndarray:
    """Panoptic map of a segment map (-1 = void) with per-segment classes and ids."""
    values = np.asarray(class_ids, np.int64) * label_divisor + np.asarray(instance_ids, np.int64)
    lut = np.append(values, void_id * label_divisor).astype(np.int32)
    return lut[segment_map]  # index -1 picks the void entry appended last


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """COCO panoptic PNG (H, W, 3 uint8 RGB) to segment ids: R + 256 G + 256^2 B."""
    rgb = rgb.astype(np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_id`."""
    ids = np.asarray(ids, dtype=np.int64)
    if np.any(ids < 0) or np.any(ids >= 256 ** 3):
        raise ValueError("COCO segment ids must lie in 0..256^3-1")
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


def kitti_step_to_panoptic(rgb: np.ndarray, label_divisor: int = DEFAULT_LABEL_DIVISOR
                           ) -> np.ndarray:
    """KITTI-STEP PNG (R = class, 256 G + B = instance) to a panoptic map."""
    rgb = rgb.astype(np.int64)
    instance = rgb[..., 1] * 256 + rgb[..., 2]
    if np.any(instance >= label_divisor):
        raise ValueError(f"KITTI-STEP instance id {int(instance.max())} does not fit "
                         f"label_divisor {label_divisor}")
    return (rgb[..., 0] * label_divisor + instance).astype(np.int32)


def panoptic_to_kitti_step(panoptic: np.ndarray, label_divisor: int = DEFAULT_LABEL_DIVISOR
                           ) -> np.ndarray:
    """Panoptic map to the KITTI-STEP PNG encoding (H, W, 3 uint8 RGB)."""
    classes, instances = decode(panoptic, label_divisor)
    if np.any(classes > 255) or np.any(instances >= 65536):
        raise ValueError("KITTI-STEP PNGs hold classes 0..255 and instances 0..65535")
    return np.stack([classes, instances // 256, instances % 256], axis=-1).astype(np.uint8)
