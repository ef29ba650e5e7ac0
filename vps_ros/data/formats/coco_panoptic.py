"""COCO-style panoptic annotations: an RGB PNG of segment ids (id = R + 256 G + 256^2 B,
0 = void) plus a JSON ``segments_info`` list (id, category_id, iscrowd, area) per frame.
Cityscapes-VPS and VIPSeg release their video annotations this way, with segment ids
that stay the same for one object throughout a video.

Segment ids become instance ids per video. vps_ros writes ``id = panoptic value + 1`` (so
road, value 0, does not collide with void); when every thing segment of a video follows
that rule its instance ids are kept, otherwise (the released datasets' colour-coded ids)
thing segments are numbered 1, 2, ... in order of first appearance in the video.
"""
from __future__ import annotations

from typing import Any, Iterable

import cv2
import numpy as np

from ...errors import DataError
from ...panoptic import id_to_rgb
from ...types import ClassTable
from .segment_ids import SegmentLookup, ids, rgba_words, runs


def _segments(segments: Any, where: str) -> list[dict]:
    if not isinstance(segments, list):
        raise DataError(f"{where}: segments_info must be a list")
    for segment in segments:
        if not isinstance(segment, dict) or "id" not in segment or "category_id" not in segment:
            raise DataError(f"{where}: every segments_info entry needs id and category_id, "
                            f"got {segment!r}")
    return segments


def _is_thing(classes: ClassTable, category: int) -> bool:
    return 0 <= category < len(classes) and classes[category].is_thing


def video_instances(frames: Iterable[tuple[str, Any]], classes: ClassTable,
                    label_divisor: int) -> dict[int, int]:
    """Instance id of every thing segment id of one video, from its frames'
    ``(where, segments_info)`` in frame order (see the module docstring)."""
    order: list[int] = []
    seen: set[int] = set()
    vps_ros_ids = True
    for where, segments in frames:
        for segment in sorted(_segments(segments, where), key=lambda s: int(s["id"])):
            sid, category = int(segment["id"]), int(segment["category_id"])
            if not _is_thing(classes, category) or segment.get("iscrowd", 0) or sid in seen:
                continue
            seen.add(sid)
            order.append(sid)
            value = sid - 1
            vps_ros_ids &= value // label_divisor == category and value % label_divisor > 0
    if vps_ros_ids:
        return {sid: (sid - 1) % label_divisor for sid in order}
    if len(order) >= label_divisor:
        raise DataError(f"{len(order)} objects in one video do not fit label_divisor "
                        f"{label_divisor}")
    return {sid: k + 1 for k, sid in enumerate(order)}


def decode(png: np.ndarray, segments: Any, instances: dict[int, int], classes: ClassTable,
           label_divisor: int, where: str) -> np.ndarray:
    """Panoptic map (package encoding) of one frame's PNG and segments_info."""
    if png.ndim != 3 or png.dtype != np.uint8:
        raise DataError(f"{where}: expected an 8-bit RGB panoptic PNG, got {png.dtype} of "
                        f"shape {png.shape}")
    if png.shape[2] == 3:
        png = cv2.cvtColor(np.ascontiguousarray(png), cv2.COLOR_RGB2RGBA)
    words = rgba_words(png)
    starts, lengths = runs(words)
    by_id = {int(s["id"]): s for s in _segments(segments, where)}
    beyond = sorted(sid for sid in by_id if not 0 <= sid < 256 ** 3)  # no PNG colour has them
    if beyond:
        raise DataError(f"{where}: segment id(s) {beyond[:8]} are in the JSON segments_info "
                        f"but not in the PNG")
    values = list(by_id) + ([] if 0 in by_id else [0])
    rows, stray = SegmentLookup(np.array(values, np.int64)).rows(ids(words.ravel()[starts]))
    if stray is not None:
        raise DataError(f"{where}: segment id(s) {stray[:8].tolist()} are in the PNG but not "
                        f"in its JSON segments_info")
    present = np.bincount(rows, minlength=len(values)) > 0
    only_json = sorted(sid for sid, seen in zip(values, present.tolist()) if sid and not seen)
    if only_json:
        raise DataError(f"{where}: segment id(s) {only_json[:8]} are in the JSON segments_info "
                        f"but not in the PNG")
    lut = np.empty(len(values), np.int32)
    for k, sid in enumerate(values):
        if sid == 0:
            lut[k] = classes.void_id * label_divisor
            continue
        category = int(by_id[sid]["category_id"])
        if not 0 <= category < len(classes):
            raise DataError(f"{where}: segment {sid} has unknown category_id {category} "
                            f"(class table {classes.name!r} has 0..{len(classes) - 1})")
        crowd = bool(by_id[sid].get("iscrowd", 0))
        instance = instances.get(sid, 0) if classes[category].is_thing and not crowd else 0
        lut[k] = category * label_divisor + instance
    return np.repeat(lut.take(rows), lengths).reshape(words.shape)


def encode(panoptic: np.ndarray, classes: ClassTable, label_divisor: int, where: str
           ) -> tuple[np.ndarray, list[dict]]:
    """(RGB PNG array, segments_info) of a panoptic map; things with instance 0 are crowd."""
    values, inverse, counts = np.unique(panoptic, return_inverse=True, return_counts=True)
    categories = values // label_divisor
    ids = np.where(categories == classes.void_id, 0, values.astype(np.int64) + 1)
    segments = []
    for value, category, sid, area in zip(values.tolist(), categories.tolist(), ids.tolist(),
                                          counts.tolist()):
        if sid == 0:
            continue
        if not 0 <= category < len(classes):
            raise DataError(f"{where}: panoptic value {value} has class {category}, not in "
                            f"class table {classes.name!r}")
        crowd = classes[category].is_thing and value % label_divisor == 0
        segments.append({"id": sid, "category_id": category, "iscrowd": int(crowd), "area": area})
    return id_to_rgb(ids[inverse.reshape(panoptic.shape)]), segments


def categories(classes: ClassTable) -> list[dict]:
    """The ``categories`` list of a COCO panoptic JSON."""
    return [{"id": c.id, "name": c.name, "isthing": int(c.is_thing), "color": list(c.color)}
            for c in classes]


def check_categories(entries: Any, classes: ClassTable, where: str) -> None:
    """DataError unless a JSON's ``categories`` agree with ``classes`` on ids and things."""
    if not isinstance(entries, list):
        raise DataError(f"{where}: categories must be a list")
    for entry in entries:
        try:
            cid, thing = int(entry["id"]), bool(entry["isthing"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}: malformed category {entry!r}") from None
        if not 0 <= cid < len(classes) or classes[cid].is_thing != thing:
            raise DataError(f"{where}: category {cid} ({entry.get('name')!r}, "
                            f"isthing={int(thing)}) does not match class table "
                            f"{classes.name!r}; pass the dataset's class table")
