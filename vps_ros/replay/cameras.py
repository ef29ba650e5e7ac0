"""Which camera streams of a bag are replayed, and their frames in recording order.

A camera is an image topic with, optionally, a ground-truth topic (``32SC1``, same
header stamps). Several cameras of one bag are given as repeated ``--image-topic``
options, each followed by its own ``--gt-topic`` (if it has one); each camera is named after the first
namespace of its image topic (``/front/image_raw`` -> ``front``), or ``cam<N>`` when
that is not a unique valid name.
"""
from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..data import bags
from ..errors import DataError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Camera:
    name: str
    image_topic: str
    gt_topic: str | None = None


@dataclass
class ReplayFrame:
    """One camera frame of the bag; ``gt`` is None for frames without annotation."""

    camera: str
    index: int           # frame number within its camera stream
    stamp_ns: int
    image: np.ndarray    # RGB uint8 (H, W, 3)
    gt: np.ndarray | None


def cameras_of(image_topics: list[str], gt_topics: list[str | None] | None) -> list[Camera]:
    """Cameras of image topics and their ground-truth topics (same positions; None or
    a missing list: no ground truth), named after the image topics."""
    gt_topics = list(gt_topics) if gt_topics is not None else [None] * len(image_topics)
    if len(gt_topics) != len(image_topics):
        raise DataError(f"{len(image_topics)} image topics but {len(gt_topics)} ground-truth "
                        "topics")
    if len(set(image_topics)) != len(image_topics):
        raise DataError(f"--image-topic given twice: {image_topics}")
    names = [t.strip("/").split("/")[0] if t.strip("/").count("/") else "" for t in image_topics]
    if len(image_topics) > 1 and (len(set(names)) != len(names)
                                  or not all(_NAME.match(n) for n in names)):
        names = [f"cam{i}" for i in range(len(image_topics))]
    if len(image_topics) == 1:
        names = [names[0] if _NAME.match(names[0]) else "camera"]
    return [Camera(name, image, truth)
            for name, image, truth in zip(names, image_topics, gt_topics)]


def check_topics(path: Path, cameras: list[Camera]) -> dict[str, bags.TopicInfo]:
    """The bag's topics; DataError naming the topics there are when one is missing."""
    found = bags.topics(path)
    listing = ", ".join(f"{name} ({info.msgtype}, {info.count})" for name, info in found.items())
    for camera in cameras:
        for kind, topic, types in (("image", camera.image_topic, (bags.IMAGE, bags.COMPRESSED)),
                                   ("ground-truth", camera.gt_topic, (bags.IMAGE,))):
            if topic is None:
                continue
            if topic not in found:
                raise DataError(f"{path}: no {kind} topic {topic!r} in the bag; it has: "
                                f"{listing or 'no topics'}")
            if found[topic].msgtype not in types:
                raise DataError(f"{path}: {kind} topic {topic!r} carries "
                                f"{found[topic].msgtype}, expected {' or '.join(types)}")
    return found


def replay_frames(path: Path, cameras: list[Camera]) -> Iterator[ReplayFrame]:
    """Every camera's frames, merged in header-stamp order (ties: camera order).

    Each camera's stamps must increase, and its ground truth must have the images'
    size; either fault is a DataError naming the camera, frame and stamps.
    """
    streams = [_camera_frames(path, camera) for camera in cameras]
    order = {camera.name: k for k, camera in enumerate(cameras)}
    return heapq.merge(*streams, key=lambda f: (f.stamp_ns, order[f.camera]))


def _camera_frames(path: Path, camera: Camera) -> Iterator[ReplayFrame]:
    previous = None
    frames = bags.read_frames(path, camera.image_topic, camera.gt_topic)
    for index, (stamp, image, gt) in enumerate(frames):
        if previous is not None and stamp <= previous:
            raise DataError(f"{path}: {camera.image_topic} frame {index}: header stamp "
                            f"{stamp} ns is not after the previous frame's ({previous} ns); "
                            "stamps must increase (re-record or re-stamp the bag)")
        previous = stamp
        if gt is not None and gt.shape != image.shape[:2]:
            raise DataError(f"{path}: {camera.gt_topic} frame {index} (stamp {stamp} ns): "
                            f"ground truth is {gt.shape[1]}x{gt.shape[0]} but the image on "
                            f"{camera.image_topic} is {image.shape[1]}x{image.shape[0]}")
        yield ReplayFrame(camera.name, index, stamp, image, gt)
