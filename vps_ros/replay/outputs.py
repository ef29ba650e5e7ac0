"""What a replay gets back per frame, and the node's output messages as rosbags
messages (ROS-free: the offline replay records the same messages the node publishes).

The object fields follow docs/architecture.md's PanopticObject; boxes are clipped to the panoptic
image (``vps_ros.objmsg``, the node's fields too), so offline and live replay record
the same objects.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Writer, WriterError

from .. import imgmsg
from ..data import bags
from ..errors import DataError
from ..objmsg import object_fields, roi_fields
from ..types import ClassTable, TrackedFrame, TrackedObject

OBJECTS = "vps_ros/msg/PanopticObjectArray"


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
        roi = t["sensor_msgs/msg/RegionOfInterest"]
        items = [t["vps_ros/msg/PanopticObject"](
            bbox=roi(**roi_fields(o.box, width, height), do_rectify=False),
            **object_fields(o, self.classes, frame.label_divisor)) for o in frame.objects]
        return t[OBJECTS](header=self.header(frame.stamp_ns, frame_id),
                          label_divisor=frame.label_divisor, objects=items)

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
    """Writes outputs (their CDR messages) to a new rosbag2 (mcap) with rosbags, one mcap
    chunk per output, so that an interrupted replay leaves a recoverable bag."""

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
        bags.end_frame(self.writer)

    def close(self) -> None:
        self.writer.close()
