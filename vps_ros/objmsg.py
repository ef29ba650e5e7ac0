"""TrackedObject -> PanopticObject message fields (docs/architecture.md), as plain values.

The one place that decides what a published object holds: the node fills rclpy
messages from it (``vps_ros.ros.convert``) and the offline replay fills rosbags
messages (``vps_ros.replay.outputs``), so offline and live record the same objects.
"""
from __future__ import annotations

import math
from typing import Any

from .types import ClassTable, TrackedObject

_UINT32_MAX = 2 ** 32 - 1


def roi_fields(box: tuple[float, float, float, float], width: int, height: int
               ) -> dict[str, int]:
    """The pixels a box ``(x0, y0, x1, y1)`` (x1/y1 exclusive) covers inside a
    ``width`` x ``height`` image, as RegionOfInterest fields: a memory-only object
    predicted outside the image gets an empty box at the border."""
    x0, y0, x1, y1 = box
    left = min(max(math.floor(x0), 0), width)
    top = min(max(math.floor(y0), 0), height)
    right = min(max(math.ceil(x1), left), width)
    bottom = min(max(math.ceil(y1), top), height)
    return {"x_offset": left, "y_offset": top, "width": right - left, "height": bottom - top}


def object_fields(obj: TrackedObject, classes: ClassTable, label_divisor: int
                  ) -> dict[str, Any]:
    """PanopticObject fields of ``obj`` except ``bbox`` (see :func:`roi_fields`);
    counters saturate at the uint32 range."""
    return {
        "id": obj.track_id, "panoptic_id": obj.class_id * label_divisor + obj.track_id,
        "class_id": obj.class_id, "class_name": classes[obj.class_id].name,
        "is_thing": bool(obj.is_thing), "score": float(obj.score),
        "area": min(int(obj.area), _UINT32_MAX),
        "velocity_x": float(obj.velocity[0]), "velocity_y": float(obj.velocity[1]),
        "age": min(int(obj.age), _UINT32_MAX),
        "frames_since_seen": min(int(obj.frames_since_seen), _UINT32_MAX)}
