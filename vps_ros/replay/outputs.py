"""What a replay gets back per frame, and the node's output messages as rosbags
messages (ROS-free: the offline replay records the same messages the node publishes).

The object fields follow DESIGN.md's PanopticObject; boxes are clipped to the panoptic
image as the node clips them (``vps_ros.ros.convert``), so offline and live replay
record the same objects.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Writer, WriterError

from .. import imgmsg
from ..data import bags
from ..errors import DataError
from ..types import ClassTable, TrackedFrame, TrackedObject

OBJECTS = "vps_ros/msg/PanopticObjectArray"
_UINT32_MAX = 2 ** 32 - 1


@dataclass
class ReplayOutput:
    """The node's (or the offline pipeline's) answer to one frame."""

    camera: str
    stamp_ns: int
    panoptic: np.ndarray                 # (H, W) int32
    objects: list[TrackedObject]
    latency_ms: float                    # frame sent (offline: step started) -> output
    raw: dict[str, bytes] = field(default_factory=dict)   # "panoptic"/"objects": CDR


def output_topics(camera: str) -> dict[str, str]:
    """Topics of a camera's outputs in a recorded bag: /<camera>/panoptic, /<camera>/objects."""
    return {"panoptic": f"/{camera}/panoptic", "objects": f"/{camera}/objects"}


def objects_from_msg(msg: Any) -> list[TrackedObject]:
    """TrackedObjects of a PanopticObjectArray (an rclpy or a rosbags message)."""
    return [TrackedObject(
        track_id=int(o.id), class_id=int(o.class_id), is_thing=bool(o.is_thing),
        score=float(o.score), area=int(o.area),
        box=(float(o.bbox.x_offset), float(o.bbox.y_offset),
             float(o.bbox.x_offset + o.bbox.width), float(o.bbox.y_offset + o.bbox.height)),
        velocity=(float(o.velocity_x), float(o.velocity_y)), age=int(o.age),
        frames_since_seen=int(o.frames_since_seen)) for o in msg.objects]


class MessageFactory:
    """rosbags messages of the node's outputs (``panoptic`` Image, ``objects`` array)."""

    def __init__(self, classes: ClassTable) -> None:
        self.store = bags.typestore()
        self.classes = classes

    def header(self, stamp_ns: int, frame_id: str):
        t = self.store.types
        stamp = t["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000,
                                                nanosec=stamp_ns % 1_000_000_000)
        return t["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)

    def panoptic(self, panoptic: np.ndarray, stamp_ns: int, frame_id: str):
        fields = imgmsg.from_array(panoptic.astype(np.int32), "32SC1")
        return self.store.types[bags.IMAGE](
            header=self.header(stamp_ns, frame_id), height=fields.height, width=fields.width,
            encoding=fields.encoding, is_bigendian=fields.is_bigendian, step=fields.step,
            data=np.frombuffer(fields.data, np.uint8))

    def objects(self, frame: TrackedFrame, frame_id: str):
        t = self.store.types
        height, width = frame.panoptic.shape
        items = [t["vps_ros/msg/PanopticObject"](
            id=o.track_id, panoptic_id=o.class_id * frame.label_divisor + o.track_id,
            class_id=o.class_id, class_name=self.classes[o.class_id].name,
            is_thing=o.is_thing, score=float(o.score), area=min(int(o.area), _UINT32_MAX),
            bbox=self._roi(o.box, width, height), velocity_x=float(o.velocity[0]),
            velocity_y=float(o.velocity[1]), age=min(int(o.age), _UINT32_MAX),
            frames_since_seen=min(int(o.frames_since_seen), _UINT32_MAX))
            for o in frame.objects]
        return t[OBJECTS](header=self.header(frame.stamp_ns, frame_id),
                          label_divisor=frame.label_divisor, objects=items)

    def _roi(self, box: tuple[float, float, float, float], width: int, height: int):
        x0, y0, x1, y1 = box
        left = min(max(math.floor(x0), 0), width)
        top = min(max(math.floor(y0), 0), height)
        right = min(max(math.ceil(x1), left), width)
        bottom = min(max(math.ceil(y1), top), height)
        return self.store.types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=left, y_offset=top, width=right - left, height=bottom - top,
            do_rectify=False)

    def serialize(self, msg: Any, msgtype: str) -> bytes:
        return bytes(self.store.serialize_cdr(msg, msgtype))


def offline_output(camera: str, frame: TrackedFrame, factory: MessageFactory,
                   latency_ms: float) -> ReplayOutput:
    """A pipeline result as the node would publish it (objects through the message)."""
    objects = factory.objects(frame, camera)
    raw = {"panoptic": factory.serialize(factory.panoptic(frame.panoptic, frame.stamp_ns,
                                                          camera), bags.IMAGE),
           "objects": factory.serialize(objects, OBJECTS)}
    return ReplayOutput(camera, frame.stamp_ns, frame.panoptic, objects_from_msg(objects),
                        latency_ms, raw)


class OutputRecorder:
    """Writes outputs (their CDR messages) to a new rosbag2 (mcap) with rosbags."""

    def __init__(self, path: Path, cameras: list[str], classes: ClassTable,
                 label_divisor: int) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise DataError(f"{self.path}: --record bag exists already; give a new path")
        store = bags.typestore()
        try:
            self.writer = Writer(self.path, version=9, storage_plugin=bags.STORAGES["mcap"])
        except WriterError as exc:
            raise DataError(f"{self.path}: {exc}") from None
        self.writer.set_custom_data("vps_ros.classes", json.dumps(classes.to_dict()))
        self.writer.set_custom_data("vps_ros.label_divisor", str(label_divisor))
        self.writer.open()
        self.connections = {}
        for camera in cameras:
            topics = output_topics(camera)
            self.connections[(camera, "panoptic")] = self.writer.add_connection(
                topics["panoptic"], bags.IMAGE, typestore=store)
            self.connections[(camera, "objects")] = self.writer.add_connection(
                topics["objects"], OBJECTS, typestore=store)

    def write(self, output: ReplayOutput) -> None:
        for kind in ("panoptic", "objects"):
            self.writer.write(self.connections[(output.camera, kind)], output.stamp_ns,
                              output.raw[kind])

    def close(self) -> None:
        self.writer.close()
