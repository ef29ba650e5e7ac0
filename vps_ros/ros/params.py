"""ROS parameters of the node, declared from the config dataclasses' ``param`` metadata.

The descriptor of each parameter carries the field's description, its range
(``ros2 param describe`` shows them) and its allowed choices. Changes are checked by
:func:`vps_ros.ros.node_config.check_change`.
"""
from __future__ import annotations

import typing
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from vps_ros.config import Leaf, load_yaml, suggest
from vps_ros.errors import ConfigError
from vps_ros.pipeline import check_sections

from .node_config import NodeConfig, config_from_values, is_runtime, node_parameters

_INT64_MAX = 2 ** 63 - 1
RCLPY_PARAMETERS = frozenset({"use_sim_time", "start_type_description_service"})
RCLPY_PREFIXES = ("qos_overrides.",)
_TYPES = {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER,
          float: Parameter.Type.DOUBLE, str: Parameter.Type.STRING}
_ARRAY_TYPES = {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                float: Parameter.Type.DOUBLE_ARRAY, str: Parameter.Type.STRING_ARRAY}


def descriptor(leaf: Leaf) -> ParameterDescriptor:
    """The ParameterDescriptor of one config field: type, description, range, choices."""
    meta = leaf.meta
    when = "changes apply from the next frame" if is_runtime(leaf.name) else \
        "read at configure"
    desc = ParameterDescriptor(name=leaf.name, type=parameter_type(leaf).value,
                               description=f"{meta.get('doc', '')} ({when})")
    if meta.get("choices"):
        desc.additional_constraints = "one of: " + ", ".join(map(str, meta["choices"]))
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is None and hi is None:
        return desc
    if leaf.hint is float:
        desc.floating_point_range = [FloatingPointRange(
            from_value=float("-inf") if lo is None else float(lo),
            to_value=float("inf") if hi is None else float(hi), step=0.0)]
        if meta.get("lo_open"):
            desc.additional_constraints = f"must be > {lo}"
    elif leaf.hint is int:
        desc.integer_range = [IntegerRange(from_value=-_INT64_MAX if lo is None else int(lo),
                                           to_value=_INT64_MAX if hi is None else int(hi),
                                           step=1)]
    return desc


def parameter_type(leaf: Leaf) -> Parameter.Type:
    if typing.get_origin(leaf.hint) in (list, tuple):
        (item,) = typing.get_args(leaf.hint)[:1]
        return _ARRAY_TYPES[item]
    return _TYPES[leaf.hint]


def declare(node: Node) -> None:
    """Declare every parameter of the node with its default and descriptor.

    A value of the wrong type in a parameters file raises
    :class:`~vps_ros.errors.ConfigError` naming the parameter and the type it needs.
    """
    for leaf in node_parameters():
        default = list(leaf.default) if isinstance(leaf.default, tuple) else leaf.default
        try:
            node.declare_parameter(leaf.name, default, descriptor(leaf))
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            raise ConfigError(f"parameter {leaf.name}: {exc}") from None


def unknown_overrides(node: Node) -> list[str]:
    """Parameters given to the node (``-p``, a parameters file) that it does not declare,
    each with the declared name closest to it: a misspelled name would otherwise be
    ignored without a word. rclpy's own parameters are not counted."""
    declared = {leaf.name for leaf in node_parameters()}
    lines = []
    for name in sorted(set(node._parameter_overrides) - declared):
        if name in RCLPY_PARAMETERS or name.startswith(RCLPY_PREFIXES):
            continue
        lines.append(suggest(name, sorted(declared)))
    return lines


def check_files(node: Node, argv: list[str]) -> None:
    """Refuse a parameters file given in ``argv`` (``--ros-args --params-file FILE``)
    with a section misspelling the node's name or none for it: rcl would apply
    nothing of it without a word (:func:`vps_ros.pipeline.check_sections`)."""
    for path in params_files(argv):
        check_sections(load_yaml(path), path, node.get_name())


def params_files(argv: list[str]) -> list[str]:
    """The files of ``--params-file`` in the ROS arguments of a command line."""
    files, ros_args = [], False
    for arg, value in zip(argv, [*argv[1:], None]):
        if arg in ("--ros-args", "--"):
            ros_args = arg == "--ros-args"
        elif ros_args and arg == "--params-file" and value is not None:
            files.append(value)
    return files


def read(node: Node) -> NodeConfig:
    """The node's configuration from its current parameter values (validated)."""
    return config_from_values(values(node))


def values(node: Node) -> dict[str, Any]:
    """Dotted name -> current value of every parameter of the node."""
    return {leaf.name: node.get_parameter(leaf.name).value for leaf in node_parameters()}
