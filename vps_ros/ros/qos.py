"""QoS of the node's topics.

Outputs are reliable (depth 10). The input follows ``input_qos``: ``sensor_data`` (best
effort), ``reliable`` (lossless replay) or ``auto`` (the default), which adapts to the
camera's publishers as ``ros2 bag record`` does: reliable when every publisher offers
reliable, best effort otherwise (also while there is none yet, since best effort matches
any publisher). Over Fast DDS's default transports a best-effort subscriber of a reliable
1080p camera loses nearly every frame, a reliable one gets them all (docs/cameras.md).
"""
from __future__ import annotations

from typing import Iterable

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

from .node_config import NodeConfig

OUTPUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
SENSOR_DEPTH = qos_profile_sensor_data.depth


def adapted_reliability(offered: Iterable[ReliabilityPolicy]) -> ReliabilityPolicy:
    """The reliability a subscription should request of publishers offering ``offered``:
    reliable only if there is at least one and every one is reliable."""
    offered = list(offered)
    if offered and all(policy == ReliabilityPolicy.RELIABLE for policy in offered):
        return ReliabilityPolicy.RELIABLE
    return ReliabilityPolicy.BEST_EFFORT


def input_qos(config: NodeConfig,
              reliability: ReliabilityPolicy = ReliabilityPolicy.BEST_EFFORT) -> QoSProfile:
    """sensor_data: best effort, as camera drivers publish; reliable: lossless replay
    (deep enough that the subscription never loses what the queue would keep); auto:
    ``reliability`` (from :func:`adapted_reliability`) with sensor_data's depth."""
    if config.input_qos == "reliable":
        return QoSProfile(depth=max(10, config.input_queue_size),
                          reliability=ReliabilityPolicy.RELIABLE)
    if config.input_qos == "auto":
        return QoSProfile(depth=max(SENSOR_DEPTH, config.input_queue_size),
                          history=HistoryPolicy.KEEP_LAST, reliability=reliability,
                          durability=DurabilityPolicy.VOLATILE)
    return qos_profile_sensor_data
