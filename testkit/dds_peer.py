"""A separate process for the message round-trip test: ``pub`` publishes one
PanopticObjectArray built from a JSON description once a subscriber is matched;
``sub`` prints the first message it receives as JSON and exits once the publisher
has left."""
import json
import sys
import time

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from vps_ros.msg import PanopticObject, PanopticObjectArray

TOPIC = "roundtrip_objects"
QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def to_msg(d: dict) -> PanopticObjectArray:
    msg = PanopticObjectArray()
    msg.header.stamp.sec, msg.header.stamp.nanosec = d["stamp"]
    msg.header.frame_id = d["frame_id"]
    msg.label_divisor = d["label_divisor"]
    for o in d["objects"]:
        obj = PanopticObject()
        for key, value in o.items():
            if key == "bbox":
                obj.bbox.x_offset, obj.bbox.y_offset, obj.bbox.width, obj.bbox.height = value
            else:
                setattr(obj, key, value)
        msg.objects.append(obj)
    return msg


def to_dict(msg: PanopticObjectArray) -> dict:
    objects = []
    for obj in msg.objects:
        o = {k: getattr(obj, k) for k in ("id", "panoptic_id", "class_id", "class_name",
                                           "is_thing", "score", "area", "velocity_x",
                                           "velocity_y", "age", "frames_since_seen")}
        o["bbox"] = [obj.bbox.x_offset, obj.bbox.y_offset, obj.bbox.width, obj.bbox.height]
        objects.append(o)
    return {"stamp": [msg.header.stamp.sec, msg.header.stamp.nanosec],
            "frame_id": msg.header.frame_id, "label_divisor": msg.label_divisor,
            "objects": objects}


def publish(description: dict) -> None:
    node = rclpy.create_node("roundtrip_pub")
    pub = node.create_publisher(PanopticObjectArray, TOPIC, QOS)
    deadline = time.monotonic() + 30
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            sys.exit("no subscriber matched within 30 s")
        rclpy.spin_once(node, timeout_sec=0.05)
    pub.publish(to_msg(description))
    if not pub.wait_for_all_acked(rclpy.duration.Duration(seconds=10)):
        sys.exit("subscriber did not acknowledge the message")


def subscribe() -> None:
    node = rclpy.create_node("roundtrip_sub")
    received = []
    node.create_subscription(PanopticObjectArray, TOPIC, received.append, QOS)
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while not received and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    if not received:
        sys.exit("nothing received within 30 s")
    print(json.dumps(to_dict(received[0])), flush=True)
    # Stay until the publisher has left: it waits for this reader's acknowledgement, and a
    # reader that leaves at once can take it along (seen: the publisher then hung).
    leave_by = time.monotonic() + 20
    while node.count_publishers(TOPIC) and time.monotonic() < leave_by:
        rclpy.spin_once(node, timeout_sec=0.05)


if __name__ == "__main__":
    rclpy.init()
    try:
        if sys.argv[1] == "pub":
            publish(json.loads(sys.argv[2]))
        else:
            subscribe()
    finally:
        rclpy.try_shutdown()
