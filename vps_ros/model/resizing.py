"""Between camera images and the network's input: fitting in, mapping segments out.
The one owner of model-to-camera geometry: segments, panoptic maps, tracked objects
and the image an overlay is drawn on (docs/architecture.md).

In ``letterbox`` mode (the default) an image is scaled with its aspect kept until it
fits the network's input (:meth:`~vps_ros.model.MaskSegmenter.network_size`: the model's
input width, and as high as the camera's aspect needs) and padded at the right and
bottom: a 16:9 camera is neither squashed into a 2:1 input nor shrunk below the scale
the model was trained at. ``stretch`` resizes to the input size whatever the aspect.

Outputs go back the other way: the segment map of the image's part of the input (the
padding cut off) is resized with nearest neighbour to the camera's size. Areas and
boxes at the camera's size follow from the model-size map: nearest-neighbour upscaling
repeats every model pixel a known number of times along each axis, so nothing is
measured again on the full-size map (a 1920x1080 map holds 2 M pixels). A tracked
frame (:func:`tracked_at`) is mapped to the camera's size once, after tracking.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import cv2
import numpy as np
from ..types import FrameSegments, TrackedObject
from .postprocess import boxes_of, segments_from_map

RESIZE_MODES = ("letterbox", "stretch")


def fitted_size(image_size: tuple[int, int], input_size: tuple[int, int], mode: str
                ) -> tuple[int, int]:
    """(height, width) an image of ``image_size`` takes in the network input."""
    if mode == "stretch":
        return tuple(input_size)
    scale = min(input_size[0] / image_size[0], input_size[1] / image_size[1])
    return (min(input_size[0], max(1, round(image_size[0] * scale))),
            min(input_size[1], max(1, round(image_size[1] * scale))))


def letterbox(image: np.ndarray, fitted: tuple[int, int], input_size: tuple[int, int]
              ) -> np.ndarray:
    """``image`` resized to ``fitted`` at the top left of a black ``input_size`` canvas."""
    resized = resize_image(image, fitted)
    if tuple(fitted) == tuple(input_size):
        return resized
    canvas = np.zeros(tuple(input_size) + image.shape[2:], image.dtype)
    canvas[:fitted[0], :fitted[1]] = resized
    return canvas


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` at ``size`` = (height, width): area averaging when shrinking (no
    aliasing), bilinear when enlarging.

    A large shrink first halves the image while it stays at least ``size``: averaging
    2 x 2 blocks is area averaging all the same, and OpenCV's path for exactly half is
    several times faster than its general one (1920x1080 to 455x256: ~2 ms instead of
    ~10 ms on the development machine).
    """
    if image.shape[:2] == tuple(size):
        return image
    if image.shape[0] * image.shape[1] <= size[0] * size[1]:
        return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    while (image.shape[0] % 2 == 0 and image.shape[1] % 2 == 0
           and image.shape[0] // 2 >= size[0] and image.shape[1] // 2 >= size[1]):
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2),
                           interpolation=cv2.INTER_AREA)
    if image.shape[:2] == tuple(size):
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def crop_segments(segments: FrameSegments, size: tuple[int, int],
                  is_thing: np.ndarray) -> FrameSegments:
    """The segments of the map's top-left ``size`` (the image without its padding);
    segments that lay only in the padding are dropped."""
    if segments.image_size == tuple(size):
        return segments
    return segments_from_map(np.ascontiguousarray(segments.segment_map[:size[0], :size[1]]),
                             segments.class_ids, segments.scores, is_thing,
                             segments.embeddings, segments.queries)


def scale_segments(segments: FrameSegments, size: tuple[int, int]
                   ) -> tuple[FrameSegments, np.ndarray]:
    """The segments on a map of ``size`` (nearest neighbour, as ``cv2.resize``), and the
    indices of the segments kept (a segment may vanish when a map shrinks).

    Enlarging, areas and boxes are computed from the model-size map and the number of
    times each of its rows and columns is repeated: equal to measuring the large map.
    """
    if segments.image_size == tuple(size):
        return segments, np.arange(segments.num_segments)
    resized = cv2.resize(segments.segment_map, (size[1], size[0]),
                         interpolation=cv2.INTER_NEAREST)
    rows = nearest_source(segments.image_size[0], size[0])
    cols = nearest_source(segments.image_size[1], size[1])
    n = segments.num_segments
    if size[0] < segments.image_size[0] or size[1] < segments.image_size[1]:
        areas = np.bincount(resized.ravel() + 1, minlength=n + 1)[1:]
        boxes = boxes_of(resized, n)
    else:
        repeats = np.outer(np.bincount(rows), np.bincount(cols)).ravel()
        areas = np.bincount(segments.segment_map.ravel() + 1, repeats, n + 1)[1:]
        x0, y0, x1, y1 = segments.boxes.astype(np.int64).T
        boxes = np.stack([np.searchsorted(cols, x0), np.searchsorted(rows, y0),
                          np.searchsorted(cols, x1), np.searchsorted(rows, y1)], 1)
    kept = np.flatnonzero(areas > 0)
    if len(kept) < n:
        lut = np.full(n + 1, -1, np.int32)
        lut[kept] = np.arange(len(kept), dtype=np.int32)
        resized = lut[resized]  # index -1 reads the last entry, -1
    return FrameSegments(resized, segments.class_ids[kept], segments.scores[kept],
                         segments.is_thing[kept], boxes[kept].astype(np.float32),
                         areas[kept].astype(np.int64), segments.embeddings[kept],
                         None if segments.queries is None else segments.queries[kept]), kept


def nearest_source(source: int, target: int) -> np.ndarray:
    """For each of ``target`` pixels along an axis, the source pixel that
    ``cv2.resize(..., INTER_NEAREST)`` copies (its arithmetic, in double precision)."""
    step = 1.0 / (target / source)
    return np.minimum(np.floor(np.arange(target) * step).astype(np.int64), source - 1)


def scale_map(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A label map (segment or panoptic ids) at ``size``, nearest neighbour: ids are
    copied, never blended."""
    if labels.shape[:2] == tuple(size):
        return labels
    return cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def scale_objects(objects: Iterable[TrackedObject], from_size: tuple[int, int],
                  to_size: tuple[int, int]) -> list[TrackedObject]:
    """Objects measured in pixels of a ``from_size`` map, in pixels of ``to_size``:
    boxes and velocities scaled, areas as they were."""
    if tuple(from_size) == tuple(to_size):
        return list(objects)
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    scaled = []
    for obj in objects:
        x0, y0, x1, y1 = obj.box
        scaled.append(dataclasses.replace(obj, box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy),
                                          velocity=(obj.velocity[0] * sx,
                                                    obj.velocity[1] * sy)))
    return scaled


def tracked_at(segments: FrameSegments, track_ids: np.ndarray, things: list[TrackedObject],
               panoptic: np.ndarray, size: tuple[int, int]
               ) -> tuple[FrameSegments, np.ndarray, list[TrackedObject], np.ndarray]:
    """A tracked frame at model size (its segments, their track ids, the tracker's
    things, the panoptic map) at ``size``: the segments as :func:`scale_segments` maps
    them, with the track ids of those kept; things seen in this frame take their
    segment's area and box, those held in memory their predicted box scaled (area 0);
    velocities scale with the image; the map by nearest neighbour."""
    scaled, kept = scale_segments(segments, size)
    track_ids = track_ids[kept]
    index = {int(t): k for k, t in enumerate(track_ids.tolist()) if t}
    moved = []
    for obj, at in zip(things, scale_objects(things, segments.image_size, scaled.image_size)):
        k = index.get(obj.track_id) if obj.frames_since_seen == 0 else None
        if k is None:
            moved.append(dataclasses.replace(at, area=0))
        else:
            moved.append(dataclasses.replace(at, area=int(scaled.areas[k]),
                                             box=tuple(scaled.boxes[k].tolist())))
    return scaled, track_ids, moved, scale_map(panoptic, size)


def image_at(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A camera image at ``size``, to draw a map of that size over (the node's
    overlay at ``output_scale: model``): area averaging."""
    if image.shape[:2] == tuple(size):
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
