"""The perception node's parameters, declared once: the pipeline's (PipelineConfig) and
the ROS-only ones (cameras, topics, QoS, ...).

Every leaf field becomes one ROS parameter of the same dotted name (``tracker.lam``),
with the field's description and range in its ParameterDescriptor. This module does
not import rclpy, so the static launch test and the bag replay can use it as well.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from vps_ros.config import Leaf, from_mapping, leaves, nest_dotted, param, validate_value
from vps_ros.errors import ConfigError
from vps_ros.pipeline import PipelineConfig, read_params_file

NODE_NAME = "perception_node"
TRANSPORTS = ("raw", "compressed")
INPUT_QOS = ("auto", "sensor_data", "reliable")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class TopicsConfig:
    image: str = param("image", "input topic (sensor_msgs/Image) in each camera's namespace; "
                       "compressed input subscribes to <image>/compressed")
    panoptic: str = param("panoptic", "output: 32SC1 panoptic image, class_id * "
                          "label_divisor + track_id (published only while subscribed)")
    panoptic_color: str = param("panoptic_color", "output: bgr8 colours of the panoptic "
                                "image, for rviz (published only while subscribed)")
    overlay: str = param("overlay", "output: bgr8 image with class colours, boxes and ids "
                         "(published only while subscribed)")
    objects: str = param("objects", "output: vps_ros/PanopticObjectArray")

    def __post_init__(self) -> None:
        for name in ("image", "panoptic", "panoptic_color", "overlay", "objects"):
            value = getattr(self, name)
            if not _NAME.match(value.lstrip("/").lstrip("~/")):
                raise ConfigError(f"topics.{name}: {value!r} is not a valid topic name")


@dataclass(frozen=True)
class NodeConfig(PipelineConfig):
    autostart: bool = param(True, "configure and activate at start-up; false: wait for "
                            "lifecycle transitions (e.g. from a lifecycle manager)")
    enable: bool = param(True, "process incoming frames (the ~/enable service sets it)")
    cameras: list[str] = param([""], "one entry per camera stream, each with its own "
                               "subscription, tracker memory and topics under <name>/; "
                               "the single entry '' uses the node's namespace directly")
    input_transport: str = param("raw", "raw: subscribe to <image> (sensor_msgs/Image); "
                                 "compressed: to <image>/compressed (jpeg or png)",
                                 choices=TRANSPORTS)
    input_qos: str = param("auto", "input QoS: auto (reliable when every publisher of the "
                           "camera topic is, else best effort), sensor_data (best effort) "
                           "or reliable (lossless bag replay)", choices=INPUT_QOS)
    input_queue_size: int = param(1, "frames kept waiting per camera while the model is "
                                  "busy; the oldest is dropped (and counted) beyond it. 1: "
                                  "always the newest frame (real time)", lo=1, hi=1000)
    overlay_alpha: float = param(0.5, "weight of the class colours in the overlay", lo=0.0,
                                 hi=1.0)
    diagnostics_period: float = param(1.0, "seconds between /diagnostics messages",
                                      lo=0.1, hi=3600.0)
    topics: TopicsConfig = param(TopicsConfig(), "topic names")

    def __post_init__(self) -> None:
        super().__post_init__()
        cameras = list(self.cameras)
        if not cameras:
            raise ConfigError("cameras: give at least one camera ('' for a single camera "
                              "in the node's namespace)")
        if len(set(cameras)) != len(cameras):
            raise ConfigError(f"cameras: names must be unique, got {cameras}")
        for name in cameras:
            if name == "" and len(cameras) > 1:
                raise ConfigError("cameras: the empty name is only allowed for a single camera")
            if name and not _NAME.match(name):
                raise ConfigError(f"cameras: {name!r} is not a valid namespace name "
                                  "(letters, digits, _ and /)")
        absolute = [t for t in (self.topics.image, self.topics.panoptic, self.topics.objects,
                                self.topics.overlay, self.topics.panoptic_color)
                    if t.startswith(("/", "~"))]
        if absolute and len(cameras) > 1:
            raise ConfigError(f"topics: absolute and private names ({', '.join(absolute)}) "
                              "cannot be shared by several cameras; use relative names")


#: Parameters that may change while the node is configured; they apply from the next
#: frame on. All others are read at configure (clean the node up to change them).
RUNTIME_PREFIXES = ("postprocess.", "tracker.")
RUNTIME_NAMES = frozenset({"enable", "output_scale", "overlay_alpha"})


def node_parameters() -> list[Leaf]:
    """Every parameter of the node, in declaration order."""
    return leaves(NodeConfig)


def is_runtime(name: str) -> bool:
    return name in RUNTIME_NAMES or name.startswith(RUNTIME_PREFIXES)


def config_from_values(values: Mapping[str, Any], where: str = NODE_NAME) -> NodeConfig:
    """A NodeConfig of dotted parameter names -> values (validated)."""
    return from_mapping(NodeConfig, nest_dotted(values), where)


def check_change(values: Mapping[str, Any], changes: Mapping[str, Any],
                 configured: bool) -> str:
    """Why the parameter ``changes`` cannot be made to ``values`` (both dotted name ->
    value), or "" when they can.

    Each new value is checked against its field's type, range and choices, then the
    whole configuration against the dataclasses' own checks. Parameters read at
    configure may change only while the node is unconfigured.
    """
    fields = {leaf.name: leaf for leaf in node_parameters()}
    merged = dict(values)
    for name, value in changes.items():
        leaf = fields.get(name)
        if leaf is None:
            return f"{name} is not a parameter of {NODE_NAME}"
        if configured and not is_runtime(name):
            return (f"{name} is read at configure: deactivate and clean up the node, set "
                    "it, then configure again")
        try:
            merged[name] = validate_value(leaf.owner, leaf.field, value, name)
        except ConfigError as exc:
            return str(exc)
    try:
        config_from_values(merged)
    except ConfigError as exc:
        return str(exc)
    return ""


def load_node_config(path: str | Path, node_name: str = NODE_NAME) -> NodeConfig:
    """The node's configuration as a ROS 2 parameters file gives it (unknown keys,
    wrong types and out-of-range values are errors naming the file and key)."""
    return from_mapping(NodeConfig, read_params_file(path, node_name), f"{path}: {node_name}")


def node_command(params_file: str | Path | None = None,
                 overrides: Mapping[str, Any] | None = None,
                 remaps: Mapping[str, str] | None = None, name: str | None = None,
                 namespace: str | None = None) -> list[str]:
    """Command line that runs the node straight to active, in this interpreter, as the
    launch file would: ``params_file``, then ``overrides`` (dotted names), remappings
    (``{"image": "/camera/image_raw"}``), node name and namespace."""
    args = [sys.executable, "-m", "vps_ros.ros.perception_node", "--ros-args"]
    if params_file is not None:
        args += ["--params-file", str(params_file)]
    for key, value in {**(overrides or {}), "autostart": True}.items():
        args += ["-p", f"{key}:={json.dumps(value)}"]
    for source, target in (remaps or {}).items():
        args += ["-r", f"{source}:={target}"]
    if name:
        args += ["-r", f"__node:={name}"]
    if namespace:
        args += ["-r", f"__ns:={namespace}"]
    return args
