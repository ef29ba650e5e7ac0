"""Live replay: the bag's frames published over DDS to a perception node running in its
own process, its ``panoptic`` and ``objects`` outputs collected (``vps-ros replay --mode
live``; the replay's ROS-free parts are in :mod:`vps_ros.replay`).

The node is started as the launch file starts it (``node_command``: parameters file,
then overrides, straight to active) in a private namespace, on loopback discovery and
the caller's ROS_DOMAIN_ID. Frames go out at the recorded rate times ``rate``; with
``lossless`` each frame is sent only once the node answered the one before (reliable
QoS, a deep input queue), so nothing is dropped and the node computes exactly what the
offline replay computes. Outputs arrive on a spinning thread that stamps their arrival,
so latency (publish -> panoptic received) does not include the replay's own scoring.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Iterator

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image

from vps_ros.errors import DataError
from vps_ros.imgmsg import from_array, to_array
from vps_ros.msg import PanopticObjectArray
from vps_ros.pipeline import PipelineConfig
from vps_ros.replay.cameras import Camera, ReplayFrame
from vps_ros.replay.outputs import ReplayOutput, objects_from_msg
from vps_ros.resources import config_path
from vps_ros.types import ClassTable

from .dds import use_large_frame_profile
from .node_config import node_command

START_TIMEOUT_S = 120.0
ANSWER_TIMEOUT_S = 120.0
DRAIN_QUIET_S = 3.0
LOSSLESS_QUEUE = 1000
QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


class LiveEngine:
    """Context manager: starts the node and the player; :meth:`replay` streams frames."""

    def __init__(self, config: PipelineConfig, cameras: list[Camera], classes: ClassTable,
                 params_file: Path | None, lossless: bool, rate: float | None,
                 log_path: Path | None = None) -> None:
        self.classes = classes
        self.cameras = cameras
        self.lossless, self.rate = lossless, rate
        self.namespace = f"/vps_replay_{os.getpid()}"
        self.node_names = [""] if len(cameras) == 1 else [c.name for c in cameras]
        overrides = {"label_divisor": config.label_divisor, "cameras": self.node_names,
                     "input_transport": "raw", "enable": True}
        if config.model:
            model = Path(config.model)
            overrides["model"] = str(model.resolve()) if model.exists() else config.model
        if config.classes:
            overrides["classes"] = config.classes
        if lossless:
            overrides.update(input_qos="reliable", input_queue_size=LOSSLESS_QUEUE)
        self.command = node_command(params_file or config_path("perception.yaml"), overrides,
                                    namespace=self.namespace)
        self.log_path = log_path
        self._lock = threading.Condition()
        self._received: dict[tuple[str, int], dict[str, tuple[bytes, float]]] = {}
        self.process: subprocess.Popen | None = None
        self.context: rclpy.Context | None = None
        self.node = self.executor = self.spinner = None
        self._log: Any = subprocess.DEVNULL

    def _topic(self, camera: str, name: str) -> str:
        node_camera = self.node_names[[c.name for c in self.cameras].index(camera)]
        return f"{self.namespace}/{node_camera}/{name}" if node_camera else \
            f"{self.namespace}/{name}"

    # Start and stop ---------------------------------------------------------------------

    def __enter__(self) -> "LiveEngine":
        # The node and the player are private to this replay: loopback discovery for
        # both, whatever the caller's range.
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        use_large_frame_profile()     # this process publishes camera-sized frames too
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            self._log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL
            self.process = subprocess.Popen(self.command, env=env, stdout=self._log,
                                            stderr=subprocess.STDOUT)
            self._start_player()
            self._wait(self._matched, START_TIMEOUT_S, "the perception node did not come up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start_player(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("vps_replay_player", context=self.context)
        self.publishers = {c.name: self.node.create_publisher(Image, self._topic(c.name, "image"),
                                                              QOS) for c in self.cameras}
        self.subscriptions = [
            self.node.create_subscription(
                msg_type, self._topic(c.name, kind),
                lambda raw, cam=c.name, k=kind, t=msg_type: self._store(cam, k, t, raw), QOS,
                raw=True)
            for c in self.cameras for kind, msg_type in (("panoptic", Image),
                                                         ("objects", PanopticObjectArray))]
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.spinner = threading.Thread(target=self._spin, daemon=True)
        self.spinner.start()

    def __exit__(self, *exc) -> None:
        """Stop the node (its PID, SIGINT, then kill after 30 s) and the player; also
        after a start that failed halfway."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.executor is not None:
            self.executor.shutdown()
        if self.node is not None:
            self.node.destroy_node()
        if self.context is not None:
            rclpy.try_shutdown(context=self.context)
        if self.spinner is not None:
            self.spinner.join(timeout=5)
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except (ExternalShutdownException, rclpy.executors.ShutdownException):
            pass

    def _matched(self) -> bool:
        return (all(p.get_subscription_count() > 0 for p in self.publishers.values())
                and all(s.get_publisher_count() > 0 for s in self.subscriptions))

    def _wait(self, done, timeout: float, what: str) -> None:
        """Wait for ``done()``; DataError naming ``what`` (and the node's log) when the
        node exits or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not done():
                if self.process.poll() is not None:
                    raise DataError(f"{what}: the node exited with code "
                                    f"{self.process.returncode}{self._log_hint()}")
                if time.monotonic() > deadline:
                    raise DataError(f"{what} within {timeout:.0f} s{self._log_hint()}")
                self._lock.wait(timeout=0.1)

    def _log_hint(self) -> str:
        return f" (node log: {self.log_path})" if self.log_path else ""

    # Frames -----------------------------------------------------------------------------

    def _store(self, camera: str, kind: str, msg_type, raw: bytes) -> None:
        arrived = time.monotonic()
        header = deserialize_message(raw, msg_type).header
        stamp = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        with self._lock:
            self._received.setdefault((camera, stamp), {})[kind] = (raw, arrived)
            self._lock.notify_all()

    def _answered(self, frame: ReplayFrame) -> bool:
        return len(self._received.get((frame.camera, frame.stamp_ns), ())) == 2

    def _publish(self, frame: ReplayFrame) -> float:
        fields = from_array(frame.image, "rgb8")
        msg = Image(height=fields.height, width=fields.width, encoding=fields.encoding,
                    is_bigendian=fields.is_bigendian, step=fields.step)
        msg.data = fields.data
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(frame.stamp_ns, 1_000_000_000)
        msg.header.frame_id = frame.camera
        sent = time.monotonic()
        self.publishers[frame.camera].publish(msg)
        return sent

    def _output(self, frame: ReplayFrame, sent: float) -> ReplayOutput:
        with self._lock:
            got = self._received.pop((frame.camera, frame.stamp_ns))
        (pan_raw, arrived), (obj_raw, _) = got["panoptic"], got["objects"]
        pan = deserialize_message(pan_raw, Image)
        panoptic = to_array(pan.height, pan.width, pan.encoding, pan.step, pan.data,
                            pan.is_bigendian, where=f"{frame.camera} panoptic")
        objects = objects_from_msg(deserialize_message(obj_raw, PanopticObjectArray))
        return ReplayOutput(frame.camera, frame.stamp_ns, panoptic, objects,
                            (arrived - sent) * 1e3, {"panoptic": pan_raw, "objects": obj_raw})

    def replay(self, frames: Iterable[ReplayFrame]
               ) -> Iterator[tuple[ReplayFrame, ReplayOutput | None]]:
        pending: deque[tuple[ReplayFrame, float]] = deque()
        clock = None
        speed = self.rate or 1.0
        for frame in frames:
            if self.lossless:
                sent = self._publish(frame)
                self._wait(lambda: self._answered(frame), ANSWER_TIMEOUT_S,
                           f"no output for {frame.camera} frame {frame.index} "
                           f"(stamp {frame.stamp_ns} ns)")
                yield frame, self._output(frame, sent)
                continue
            self._check_node(frame)
            if clock is None:
                clock = (time.monotonic(), frame.stamp_ns)
            due = clock[0] + (frame.stamp_ns - clock[1]) / 1e9 / speed
            while time.monotonic() < due:
                yield from self._ready(pending)
                time.sleep(min(0.005, max(0.0, due - time.monotonic())))
            pending.append((frame, self._publish(frame)))
            yield from self._ready(pending)
        yield from self._drain(pending)

    def _check_node(self, frame: ReplayFrame) -> None:
        """A node that exited mid-replay ends the replay (a DataError: the report is
        partial) instead of every later frame counting as dropped."""
        code = self.process.poll()
        if code is None:
            return
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else \
            f"exited with code {code}"
        raise DataError(f"the perception node {how} during the replay, before the answer "
                        f"to {frame.camera} frame {frame.index} (stamp {frame.stamp_ns} ns)"
                        f"{self._log_hint()}")

    def _ready(self, pending: deque) -> Iterator[tuple[ReplayFrame, ReplayOutput | None]]:
        """Frames at the head of ``pending`` that were answered, or that the node dropped
        (a later frame of the same camera was answered: the node keeps camera order)."""
        while pending:
            frame, sent = pending[0]
            with self._lock:
                answered = self._answered(frame)
                later = (frame.camera, frame.stamp_ns) not in self._received and any(
                    f.camera == frame.camera and self._answered(f) for f, _ in list(pending)[1:])
            if answered:
                pending.popleft()
                yield frame, self._output(frame, sent)
            elif later:
                pending.popleft()
                yield frame, None
            else:
                return

    def _drain(self, pending: deque) -> Iterator[tuple[ReplayFrame, ReplayOutput | None]]:
        """After the last frame: wait until every frame is answered or the node has been
        quiet for DRAIN_QUIET_S; what is still unanswered was dropped."""
        quiet_since = time.monotonic()
        while pending:
            before = len(pending)
            yield from self._ready(pending)
            if len(pending) != before:
                quiet_since = time.monotonic()
                continue
            self._check_node(pending[0][0])
            if time.monotonic() - quiet_since > DRAIN_QUIET_S:
                while pending:
                    yield pending.popleft()[0], None
                return
            time.sleep(0.01)
