"""A separate process that drives perception_node over DDS for the integration tests.

    python node_driver.py PLAN.json OUT_DIR

PLAN holds ``cameras`` (the node's camera names), ``frames`` (an .npz of RGB images
``image_<i>``), ``transport`` (raw|compressed), ``reliable`` (input QoS; best effort
may lose a frame, which ``resend_after_s`` then sends again), ``outputs_reliable``
(false: subscribe to the outputs best effort, as a viewer may) and ``steps``,
a list of actions run in order (see ``Driver.run_step``). Each step's outcome goes to
OUT_DIR/results.json (one entry per step) and received panoptic maps to
OUT_DIR/panoptic.npz (``<camera>_<step>``). Frames are sent one at a time and the
driver waits for that frame's panoptic image and objects, so the node sees exactly
the sequence the test describes.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import SetBool, Trigger

from vps_ros.imgmsg import encode_compressed, from_array, to_array
from vps_ros.msg import PanopticObjectArray

NODE = "/perception_node"
TIMEOUT_S = 30.0
# The node's start: on an engine backend it exports its checkpoint at configure (cached
# for later starts), which takes tens of seconds on a loaded 2-core machine.
STARTUP_S = 180.0
TRANSITIONS = {"configure": Transition.TRANSITION_CONFIGURE,
               "activate": Transition.TRANSITION_ACTIVATE,
               "deactivate": Transition.TRANSITION_DEACTIVATE,
               "cleanup": Transition.TRANSITION_CLEANUP}


def topic(camera: str, name: str) -> str:
    return f"{camera}/{name}" if camera else name


def padded(rgb: np.ndarray, encoding: str, pad: int) -> Image:
    """An Image of ``rgb`` in ``encoding`` with ``pad`` junk bytes after every row."""
    fields = from_array(rgb, encoding)
    rows = np.frombuffer(fields.data, np.uint8).reshape(fields.height, fields.step)
    rows = np.hstack([rows, np.full((fields.height, pad), 0xCD, np.uint8)])
    msg = Image(height=fields.height, width=fields.width, encoding=encoding,
                step=fields.step + pad)
    msg.data = rows.tobytes()
    return msg


def objects_dict(msg: PanopticObjectArray) -> dict:
    return {"label_divisor": msg.label_divisor, "frame_id": msg.header.frame_id,
            "objects": [{"id": o.id, "panoptic_id": o.panoptic_id, "class_id": o.class_id,
                         "class_name": o.class_name, "is_thing": o.is_thing, "area": o.area,
                         "frames_since_seen": o.frames_since_seen,
                         "bbox": [o.bbox.x_offset, o.bbox.y_offset, o.bbox.width,
                                  o.bbox.height]} for o in msg.objects]}


class Driver:
    def __init__(self, plan: dict, out: Path) -> None:
        self.plan, self.out = plan, out
        self.node = rclpy.create_node("vps_test_driver")
        self.frames = np.load(plan["frames"]) if plan.get("frames") else {}
        self.cameras = plan.get("cameras", [""])
        self.compressed = plan.get("transport", "raw") == "compressed"
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE if
                         plan.get("reliable", True) else ReliabilityPolicy.BEST_EFFORT)
        out_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE if
                             plan.get("outputs_reliable", True) else
                             ReliabilityPolicy.BEST_EFFORT)
        self.received: dict[tuple[str, str, int], object] = {}
        self.pubs, self.subs = {}, []
        for cam in self.cameras:
            if self.compressed:
                self.pubs[cam] = self.node.create_publisher(
                    CompressedImage, topic(cam, "image/compressed"), qos)
            else:
                self.pubs[cam] = self.node.create_publisher(Image, topic(cam, "image"), qos)
            for name, msg_type in (("panoptic", Image), ("objects", PanopticObjectArray)):
                self.subs.append(self.node.create_subscription(
                    msg_type, topic(cam, name),
                    lambda msg, c=cam, n=name: self._store(c, n, msg), out_qos))
            for name in plan.get("visual", []):
                self.subs.append(self.node.create_subscription(
                    Image, topic(cam, name), lambda msg, c=cam, n=name: self._store(c, n, msg),
                    out_qos))
        self.diagnostics: list[DiagnosticArray] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append,
                                      QoSProfile(depth=50))
        self.clients = {
            "reset": self.node.create_client(Trigger, f"{NODE}/reset"),
            "enable": self.node.create_client(SetBool, f"{NODE}/enable"),
            "set_parameters": self.node.create_client(SetParameters,
                                                      f"{NODE}/set_parameters"),
            "change_state": self.node.create_client(ChangeState, f"{NODE}/change_state"),
            "get_state": self.node.create_client(GetState, f"{NODE}/get_state")}
        self.results: list[dict] = []
        self.panoptic: dict[str, np.ndarray] = {}
        self.clock_ns = 1_700_000_000_000_000_000

    def _store(self, camera: str, name: str, msg) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.received[(camera, name, stamp)] = msg

    def spin_until(self, done, timeout: float = TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            rclpy.spin_once(self.node, timeout_sec=0.02)
        return True

    def call(self, name: str, request) -> object:
        client = self.clients[name]
        if not client.wait_for_service(timeout_sec=TIMEOUT_S):
            raise RuntimeError(f"service {name} not available")
        future = client.call_async(request)
        if not self.spin_until(future.done):
            raise RuntimeError(f"service {name} did not answer")
        return future.result()

    def run(self) -> None:
        for index, step in enumerate(self.plan["steps"]):
            result = self.run_step(index, step)
            self.results.append({"op": step["op"], **result})
        (self.out / "results.json").write_text(json.dumps(self.results))
        np.savez(self.out / "panoptic.npz", **self.panoptic)

    def run_step(self, index: int, step: dict) -> dict:
        op = step["op"]
        if op == "wait_matched":
            ok = self.spin_until(lambda: all(p.get_subscription_count() > 0
                                             for p in self.pubs.values()) and
                                 all(s.get_publisher_count() > 0 for s in self.subs),
                                 timeout=STARTUP_S)
            return {"ok": ok}
        if op == "input_qos":
            return self.wait_input_qos(step["reliability"])
        if op == "frame":
            return self.frame(index, step)
        if op == "bad":
            self.pubs[step.get("camera", self.cameras[0])].publish(self.bad_message(step))
            return {}
        if op == "diagnostics":
            return self.wait_diagnostics(step)
        if op == "reset":
            response = self.call("reset", Trigger.Request())
            return {"success": response.success, "message": response.message}
        if op == "enable":
            response = self.call("enable", SetBool.Request(data=step["data"]))
            return {"success": response.success, "message": response.message}
        if op == "set_param":
            value = Parameter(step["name"], value=step["value"]).to_parameter_msg().value
            request = SetParameters.Request(parameters=[ParameterMsg(name=step["name"],
                                                                     value=value)])
            result = self.call("set_parameters", request).results[0]
            return {"successful": result.successful, "reason": result.reason}
        if op == "transition":
            request = ChangeState.Request()
            request.transition.id = TRANSITIONS[step["name"]]
            return {"success": self.call("change_state", request).success}
        if op == "state":
            return {"label": self.call("get_state", GetState.Request()).current_state.label}
        raise ValueError(f"unknown step {op}")

    def wait_input_qos(self, reliability: str) -> dict:
        """Wait until the node's image subscriptions request ``reliability``
        (reliable|best_effort); returns what they requested last."""
        wanted = ReliabilityPolicy[reliability.upper()]
        seen: list[str] = []

        def requested() -> bool:
            seen[:] = [info.qos_profile.reliability.name.lower()
                       for pub in self.pubs.values()
                       for info in self.node.get_subscriptions_info_by_topic(pub.topic_name)]
            return bool(seen) and all(name == wanted.name.lower() for name in seen)
        ok = self.spin_until(requested)
        return {"ok": ok, "requested": seen}

    def stamp(self, step: dict) -> int:
        if "stamp_ns" in step:
            return self.plan.get("stamp0_ns", 1_600_000_000_000_000_000) + step["stamp_ns"]
        self.clock_ns += 100_000_000
        return self.clock_ns

    def frame(self, index: int, step: dict) -> dict:
        """Publish frame ``step["image"]`` (an index, or camera -> index) on every camera
        named in ``step["cameras"]`` (default all) and wait for each camera's panoptic
        and objects with its stamp; with ``expect: false`` check for silence instead
        (``wait`` seconds)."""
        stamp = self.stamp(step)
        cameras = step.get("cameras", self.cameras)
        images = step["image"] if isinstance(step["image"], dict) else \
            {cam: step["image"] for cam in cameras}
        messages = {}
        for cam in cameras:
            msg = self.image_message(self.frames[f"image_{images[cam]}"], step)
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            msg.header.frame_id = f"{cam or 'camera'}_optical"
            messages[cam] = msg
            self.pubs[cam].publish(msg)
        wanted = [(cam, name, stamp) for cam in cameras for name in ("panoptic", "objects")]
        wanted += [(cam, name, stamp) for cam in cameras for name in step.get("visual", [])]
        if not step.get("expect", True):
            got = self.spin_until(lambda: any(k in self.received for k in wanted),
                                  timeout=step.get("wait", 1.5))
            return {"stamp_ns": stamp, "received": got}
        ok = self.spin_until(lambda: all(k in self.received for k in wanted),
                             timeout=self.plan.get("resend_after_s", TIMEOUT_S))
        deadline = time.monotonic() + TIMEOUT_S
        while not ok and "resend_after_s" in self.plan and time.monotonic() < deadline:
            for cam in cameras:
                if (cam, "panoptic", stamp) not in self.received:
                    self.pubs[cam].publish(messages[cam])
            ok = self.spin_until(lambda: all(k in self.received for k in wanted),
                                 timeout=self.plan["resend_after_s"])
        result = {"stamp_ns": stamp, "received": ok, "cameras": {}}
        for cam in cameras:
            pan = self.received.get((cam, "panoptic", stamp))
            objs = self.received.get((cam, "objects", stamp))
            if pan is None or objs is None:
                continue
            self.panoptic[f"{cam or 'camera'}_{index}"] = to_array(
                pan.height, pan.width, pan.encoding, pan.step, pan.data, pan.is_bigendian)
            entry = {"panoptic_encoding": pan.encoding, "panoptic_frame_id": pan.header.frame_id,
                     **objects_dict(objs)}
            for name in step.get("visual", []):
                vis = self.received[(cam, name, stamp)]
                entry[name] = {"encoding": vis.encoding, "height": vis.height,
                               "width": vis.width, "frame_id": vis.header.frame_id}
            result["cameras"][cam or "camera"] = entry
        return result

    def image_message(self, rgb: np.ndarray, step: dict):
        if self.compressed:
            fmt, data = encode_compressed(rgb, "png")
            msg = CompressedImage(format=fmt)
            msg.data = data
            return msg
        return padded(rgb, step.get("encoding", "rgb8"), step.get("pad", 0))

    def bad_message(self, step: dict):
        kind, stamp = step["kind"], self.stamp(step)
        if kind == "corrupt_jpeg":
            msg = CompressedImage(format="jpeg")
            msg.data = b"\xff\xd8\xff\xe0" + bytes(200)
        else:
            rgb = self.frames["image_0"]
            msg = padded(rgb, "rgb8", 0)
            if kind == "unknown_encoding":
                msg.encoding = "yuv422_yuy2"
            elif kind == "short_data":
                msg.data = bytes(msg.data)[: msg.step * msg.height // 2]
            elif kind == "zero_size":
                msg.height, msg.width, msg.step, msg.data = 0, 0, 0, b""
            else:
                raise ValueError(f"unknown bad input {kind}")
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        return msg

    def wait_diagnostics(self, step: dict) -> dict:
        """Wait for a /diagnostics status of ``step["status"]`` (suffix of its name)
        whose integer values reach ``step["at_least"]``; return its values. With
        ``fresh``, only messages the node published after this step began count (the
        first one to arrive may have been under way already, so it is left out)."""
        suffix, wanted = step["status"], step.get("at_least", {})
        found: dict = {}
        if step.get("fresh"):
            self.diagnostics.clear()
            if not self.spin_until(lambda: len(self.diagnostics) >= 2):
                return {"ok": False, "values": {}}
            del self.diagnostics[0]

        def satisfied() -> bool:
            for array in self.diagnostics:
                for status in array.status:
                    if not status.name.endswith(suffix):
                        continue
                    values = {kv.key: kv.value for kv in status.values}
                    if all(float(values.get(k, "nan")) >= v for k, v in wanted.items()):
                        found.update(values, level=int.from_bytes(status.level, "little")
                                     if isinstance(status.level, bytes) else int(status.level),
                                     message=status.message, name=status.name)
                        return True
            self.diagnostics.clear()
            return False
        ok = self.spin_until(satisfied)
        return {"ok": ok, "values": found}


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    rclpy.init()
    try:
        driver = Driver(plan, out)
        driver.run()
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
