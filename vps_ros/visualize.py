"""Overlay drawing shared by the node's overlay topic, reports, previews and model cards."""
from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

from .model.resizing import scale_map, scale_objects
from .palette import colorize, instance_color
from .panoptic import DEFAULT_LABEL_DIVISOR
from .types import ClassTable, TrackedObject


def overlay(image_rgb: np.ndarray, panoptic: np.ndarray, table: ClassTable,
            objects: Iterable[TrackedObject] = (), label_divisor: int = DEFAULT_LABEL_DIVISOR,
            alpha: float = 0.5) -> np.ndarray:
    """Class colours blended over the image, with a box and the id of every thing.

    Objects seen in this frame get a thick box and their id; memory-only objects (box
    predicted by the memory buffer) a thin box and the id followed by "?". ``panoptic``
    may have another size than the image: it and the boxes are mapped to the image's
    (``model/resizing.py``).
    """
    size = image_rgb.shape[:2]
    things = scale_objects((o for o in objects if o.is_thing), panoptic.shape, size)
    colors = colorize(scale_map(panoptic, size), table, label_divisor)
    out = cv2.addWeighted(image_rgb, 1.0 - alpha, colors, alpha, 0.0)
    for obj in things:
        color = tuple(int(v) for v in instance_color(table[obj.class_id].color, obj.track_id))
        x0, y0, x1, y1 = obj.box
        p0 = (int(round(x0)), int(round(y0)))
        p1 = (int(round(x1)) - 1, int(round(y1)) - 1)
        seen = obj.frames_since_seen == 0
        cv2.rectangle(out, p0, p1, color, 2 if seen else 1, cv2.LINE_AA)
        label = f"{obj.track_id}" if seen else f"{obj.track_id}?"
        cv2.putText(out, label, (p0[0] + 2, max(p0[1] + 12, 12)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out
