"""The perception node: camera images in, panoptic images and tracked objects out.

A lifecycle node (configure loads the model, activate starts the subscriptions, the
publishers and the inference thread, deactivate and cleanup release them) that goes
straight to active when ``autostart`` is true. It is thin: convert the message,
queue it, let :mod:`vps_ros.pipeline` do the work, publish. Topics, parameters and
services are listed in docs/node.md.

Real time: the subscription callbacks only check and queue frames; a separate
inference thread takes the oldest waiting frame of every camera (at most
``input_queue_size`` wait per camera, older ones are dropped and counted), decodes them
and runs them through one batched model call. Bad input (an undecodable image, a model
or tracker error) costs that frame only: a throttled error log and a counter in
/diagnostics. A frame beyond the maximum input size (``limits``) is refused before it
is queued (a compressed one once decoded), so it neither allocates a huge network input
nor costs the other cameras' frames of its batch.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import SetBool, Trigger

from vps_ros.errors import VpsRosError
from vps_ros.model.limits import FrameTooLarge
from vps_ros.model.resizing import image_at
from vps_ros.msg import PanopticObjectArray
from vps_ros.palette import colorize
from vps_ros.pipeline import Pipeline, load_segmenter, step_batch
from vps_ros.types import TrackedFrame
from vps_ros.visualize import overlay

from . import params
from .convert import (check_image, compressed_to_rgb, image_msg, image_to_rgb, objects_msg,
                      stamp_ns)
from .dds import use_large_frame_profile
from .diagnostics import model_status, stream_status
from .frame_queue import FrameQueue
from .node_config import NODE_NAME, NodeConfig, check_change
from .qos import OUTPUT_QOS, adapted_reliability, input_qos
from .stream_stats import StreamStats

ERROR_LOG_PERIOD_S = 5.0
STOP_NOTICE_S = 5.0         # stop() says it is waiting for the inference thread after this
QOS_CHECK_PERIOD_S = 1.0    # input_qos auto: seconds between looks at the publishers
SIGNAL_POLL_S = 0.1         # the executor's longest wait: how late Ctrl-C is seen


@dataclass
class Waiting:
    """A frame waiting for the model: the message as it came (decoded only if the
    model takes it, so frames the queue drops cost no decoding) and, once decoded,
    its RGB pixels."""

    msg: Image | CompressedImage
    received: float           # time.monotonic() at arrival
    rgb: np.ndarray | None = None


@dataclass
class Throttle:
    """At most one log line per period; the next one says how many were held back.
    Called from the executor's and the inference thread alike. It returns the line to
    log (None: held back) and the caller logs it: rclpy refuses a second severity from
    one call site, so each severity keeps its own."""

    period_s: float
    last: float = -float("inf")
    held: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, message: str) -> str | None:
        with self._lock:
            now = time.monotonic()
            if now - self.last < self.period_s:
                self.held += 1
                return None
            more = f" ({self.held} more since the last report)" if self.held else ""
            self.last, self.held = now, 0
        return message + more


@dataclass
class CameraStream:
    """One camera: its pipeline (tracker memory), topics, publishers and statistics."""

    index: int
    name: str
    pipeline: Pipeline
    topics: dict[str, str]
    publishers: dict[str, Any]
    stats: StreamStats = field(default_factory=StreamStats)
    errors: Throttle = field(default_factory=lambda: Throttle(ERROR_LOG_PERIOD_S))
    resets_log: Throttle = field(default_factory=lambda: Throttle(ERROR_LOG_PERIOD_S))
    subscription: Any = None
    objects_in_memory: int = 0
    last_bad: int = 0

    @property
    def label(self) -> str:
        return self.name or "camera"


class PerceptionNode(LifecycleNode):
    def __init__(self, *, inference_thread: bool = True, **kwargs: Any) -> None:
        """``inference_thread=False``: activate starts no inference thread; the caller
        runs each turn with :meth:`process_waiting` (deterministic batching in tests)."""
        super().__init__(NODE_NAME, **kwargs)
        self._inference_thread = inference_thread
        params.declare(self)
        for line in params.unknown_overrides(self):
            self.get_logger().error(f"unknown parameter {line}: ignored")
        self._config: NodeConfig = params.read(self)
        self._enabled = self._config.enable
        self._streams: list[CameraStream] = []
        self._segmenter = None
        self._queue: FrameQueue | None = None
        self._worker: threading.Thread | None = None
        self._service_handles: list[Any] = []
        self._diagnostics = self._diag_timer = self._qos_timer = None
        self._pending_lock = threading.Lock()
        self._pending_config: NodeConfig | None = None
        self._pending_reset = False
        self._overlay_alpha = self._config.overlay_alpha
        self._model_calls = self._model_frames = 0
        self._model_ms: deque[float] = deque(maxlen=500)
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)

    # Lifecycle -------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            config = params.read(self)
            self._segmenter = load_segmenter(config, background_builds=True)
            self._segmenter.warm_up()
            for index, name in enumerate(config.cameras):
                self._streams.append(self._make_stream(index, name, config))
            self._diagnostics = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics",
                                                                OUTPUT_QOS)
            self._service_handles = [
                self.create_service(Trigger, "~/reset", self._on_reset),
                self.create_service(SetBool, "~/enable", self._on_enable)]
        except Exception as exc:  # report any failure as the reason, stay unconfigured
            self.get_logger().error(f"configure failed: {_describe(exc)}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        self._config, self._overlay_alpha = config, config.overlay_alpha
        size = self._segmenter.input_size
        self.get_logger().info(
            f"configured: model {config.model or 'default'} on {self._segmenter.device} "
            f"({self._segmenter.backend}), "
            f"input {size[1]}x{size[0]}, {len(self._streams)} camera(s): "
            + ", ".join(s.topics["image"] for s in self._streams))
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        config = self._config
        self._queue = FrameQueue(len(self._streams), config.input_queue_size)
        if self._inference_thread:
            self._worker = threading.Thread(target=self._inference_loop, name="inference",
                                            daemon=True)
            self._worker.start()
        for stream in self._streams:
            self._subscribe(stream, ReliabilityPolicy.BEST_EFFORT)
        if config.input_qos == "auto":
            self._adapt_input_qos()
            self._qos_timer = self.create_timer(QOS_CHECK_PERIOD_S, self._adapt_input_qos)
        self._diag_timer = self.create_timer(config.diagnostics_period, self._publish_diagnostics)
        self.get_logger().info("active")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        self.get_logger().info("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        self._release()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _make_stream(self, index: int, name: str, config: NodeConfig) -> CameraStream:
        topics = {key: stream_topic(name, getattr(config.topics, key))
                  for key in ("image", "panoptic", "panoptic_color", "overlay", "objects")}
        if config.input_transport == "compressed":
            topics["image"] = f"{topics['image']}/compressed"
        pipeline = Pipeline.from_config(config, self._segmenter)
        publishers = {
            "panoptic": self.create_lifecycle_publisher(Image, topics["panoptic"], OUTPUT_QOS),
            "panoptic_color": self.create_lifecycle_publisher(Image, topics["panoptic_color"],
                                                              OUTPUT_QOS),
            "overlay": self.create_lifecycle_publisher(Image, topics["overlay"], OUTPUT_QOS),
            "objects": self.create_lifecycle_publisher(PanopticObjectArray, topics["objects"],
                                                       OUTPUT_QOS)}
        return CameraStream(index, name, pipeline, topics, publishers)

    def _subscribe(self, stream: CameraStream, reliability: ReliabilityPolicy) -> None:
        """(Re)create the camera's subscription; ``reliability`` applies to input_qos auto."""
        if stream.subscription is not None:
            self.destroy_subscription(stream.subscription)
        msg_type = CompressedImage if self._config.input_transport == "compressed" else Image
        stream.subscription = self.create_subscription(
            msg_type, stream.topics["image"], lambda msg, s=stream: self._on_image(s, msg),
            input_qos(self._config, reliability))

    def _adapt_input_qos(self) -> None:
        """input_qos auto: follow the reliability the camera's publishers offer."""
        for stream in self._streams:
            topic = stream.subscription.topic_name
            offered = [info.qos_profile.reliability
                       for info in self.get_publishers_info_by_topic(topic)]
            wanted = adapted_reliability(offered)
            if wanted != stream.subscription.qos_profile.reliability:
                self.get_logger().info(
                    f"{topic}: input {wanted.name.lower().replace('_', ' ')}, as its "
                    f"{len(offered)} publisher(s) offer")
                self._subscribe(stream, wanted)

    def stop(self) -> None:
        """Stop inputs and the inference thread (deactivate; also on exit)."""
        for stream in self._streams:
            if stream.subscription is not None:
                self.destroy_subscription(stream.subscription)
                stream.subscription = None
        for timer in (self._diag_timer, self._qos_timer):
            if timer is not None:
                self.destroy_timer(timer)
        self._diag_timer = self._qos_timer = None
        if self._queue is not None:
            self._queue.close()
        if self._worker is not None:
            # Wait for the batch under way, however long (a first compilation takes a
            # minute): a thread left running would use a released model, or race a new one.
            self._worker.join(timeout=STOP_NOTICE_S)
            if self._worker.is_alive():
                self.get_logger().warning("waiting for the model call under way to finish")
                self._worker.join()
            self._worker = None
        self._queue = None

    def _release(self) -> None:
        """Release publishers, services and the model (cleanup)."""
        for stream in self._streams:
            for publisher in stream.publishers.values():
                self.destroy_lifecycle_publisher(publisher)
        self._streams = []
        if self._diagnostics is not None:
            self.destroy_lifecycle_publisher(self._diagnostics)
            self._diagnostics = None
        for service in self._service_handles:
            self.destroy_service(service)
        self._service_handles = []
        self._segmenter = None

    # Input -------------------------------------------------------------------------------

    def _on_image(self, stream: CameraStream, msg: Image | CompressedImage) -> None:
        """Check what can be checked without decoding (a raw image's encoding, size and
        data length) and queue the frame; pixels are decoded when the model takes it."""
        received = time.monotonic()
        stream.stats.input(received)
        if not self._enabled or self._queue is None:
            return
        if isinstance(msg, Image):
            try:
                check_image(msg, where=stream.topics["image"])
                self._segmenter.limits.check_image((msg.height, msg.width),
                                                   stream.topics["image"])
            except VpsRosError as exc:
                self._bad_frame(stream, f"dropped a frame: {exc}",
                                refused=isinstance(exc, FrameTooLarge))
                return
        dropped = self._queue.put(stream.index, Waiting(msg, received))
        if dropped:
            stream.stats.count(dropped=dropped)

    def _decode(self, stream: CameraStream, frame: Waiting) -> bool:
        """Decode ``frame`` into RGB; False (counted, logged) when it cannot be."""
        where = stream.topics["image"]
        try:
            if isinstance(frame.msg, CompressedImage):
                frame.rgb = compressed_to_rgb(frame.msg, where=where)
            else:
                frame.rgb = image_to_rgb(frame.msg, where=where)
            self._segmenter.limits.check_image(frame.rgb.shape[:2], where)
        except VpsRosError as exc:
            frame.rgb = None
            self._bad_frame(stream, f"dropped a frame: {exc}",
                            refused=isinstance(exc, FrameTooLarge))
            return False
        return True

    def _bad_frame(self, stream: CameraStream, message: str, refused: bool = False) -> None:
        """Count a lost frame (``refused``: beyond the maximum input size) and log it,
        throttled per camera."""
        stream.stats.count(bad=int(not refused), refused=int(refused))
        line = stream.errors(message)
        if line:
            self.get_logger().error(line)

    # Inference thread --------------------------------------------------------------------

    def _inference_loop(self) -> None:
        queue = self._queue
        while True:
            if self.process_waiting(timeout=0.5) == 0 and queue.closed:
                return

    def process_waiting(self, timeout: float = 0.0) -> int:
        """One turn of the inference thread: the oldest waiting frame of every camera
        (waiting up to ``timeout`` s for one) through one batched model call, then
        tracked and published. Returns how many frames the model call took."""
        batch = self._queue.take(timeout=timeout) if self._queue is not None else []
        if not batch:
            return 0
        self._apply_pending()
        batch = [(self._streams[i], frame) for i, frame in batch
                 if self._decode(self._streams[i], frame)]
        if not batch:
            return 0
        streams = [stream for stream, _ in batch]

        def tracking_failed(position: int, exc: Exception) -> None:
            stream = streams[position]      # this frame is lost, the others are not
            self._bad_frame(stream, f"dropped a frame of {stream.topics['image']}: "
                                    f"tracking failed: {_describe(exc)}")
        try:
            results = step_batch([s.pipeline for s in streams], [f.rgb for _, f in batch],
                                 [stamp_ns(f.msg.header) for _, f in batch], tracking_failed)
        except Exception as exc:  # the node keeps running; this batch is lost
            for stream in streams:
                self._bad_frame(stream, f"dropped a frame of {stream.topics['image']}: "
                                        f"segmentation failed: {_describe(exc)}")
            return 0
        self._model_calls += 1
        self._model_frames += len(batch)
        tracked = [r for r in results if r is not None]
        if tracked:
            self._model_ms.append(tracked[0].timings_ms["segment"])
        for position, ((stream, waiting), result) in enumerate(zip(batch, results)):
            if result is not None:
                try:
                    self._finish(stream, waiting, result)
                except Exception as exc:
                    tracking_failed(position, exc)
        return len(batch)

    def counters(self) -> dict[str, dict[str, int]]:
        """The totals behind /diagnostics: ``model`` (calls, frames) and, per camera
        (by label), frames received, processed, dropped, bad (of them refused: beyond
        the maximum input size) and memory resets."""
        now = time.monotonic()
        counts = {"model": {"calls": self._model_calls, "frames": self._model_frames}}
        for stream in self._streams:
            snapshot = stream.stats.snapshot(now)
            counts[stream.label] = {key: snapshot[key] for key in
                                    ("received", "processed", "dropped", "bad", "refused",
                                     "resets")}
        return counts

    def _finish(self, stream: CameraStream, frame: Waiting, result: TrackedFrame) -> None:
        if result.memory_reset:
            stream.stats.count(resets=1)
            line = stream.resets_log(f"{stream.label}: {result.memory_reset}")
            if line:
                self.get_logger().warning(line)
        self._publish(stream, frame, result)
        done = time.monotonic()
        stream.stats.output(done, (done - frame.received) * 1e3)

    def _publish(self, stream: CameraStream, frame: Waiting, result: TrackedFrame) -> None:
        header, pubs = frame.msg.header, stream.publishers
        classes = self._segmenter.classes
        stream.objects_in_memory = sum(1 for o in result.objects if o.is_thing)
        if pubs["panoptic"].get_subscription_count():   # 8 MiB per 1080p frame
            pubs["panoptic"].publish(image_msg(result.panoptic, "32SC1", header))
        pubs["objects"].publish(objects_msg(result, classes, header))
        if pubs["overlay"].get_subscription_count():
            image = image_at(frame.rgb, result.panoptic.shape)
            drawn = overlay(image, result.panoptic, classes, result.objects,
                            result.label_divisor, self._overlay_alpha)
            pubs["overlay"].publish(image_msg(drawn, "bgr8", header))
        if pubs["panoptic_color"].get_subscription_count():
            colors = colorize(result.panoptic, classes, result.label_divisor)
            pubs["panoptic_color"].publish(image_msg(colors, "bgr8", header))

    def _apply_pending(self) -> None:
        """Parameter changes and resets, between two batches (the next frame on)."""
        with self._pending_lock:
            config, reset = self._pending_config, self._pending_reset
            self._pending_config, self._pending_reset = None, False
        if config is not None:
            self._segmenter.postprocess = config.postprocess
            for stream in self._streams:
                stream.pipeline.update_tracker(config.tracker)
                stream.pipeline.output_scale = config.output_scale
            self._overlay_alpha = config.overlay_alpha
        if reset:
            for stream in self._streams:
                stream.pipeline.reset()

    # Parameters and services -------------------------------------------------------------

    def _check_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        reason = check_change(params.values(self), {p.name: p.value for p in changes},
                              configured=self._segmenter is not None)
        return SetParametersResult(successful=not reason, reason=reason)

    def _apply_parameters(self, changes: list[Parameter]) -> None:
        config = params.read(self)
        self._enabled = config.enable
        with self._pending_lock:
            self._pending_config = config
        self.get_logger().info("parameters set: " + ", ".join(
            f"{p.name}={p.value!r}" for p in changes))

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response
                  ) -> Trigger.Response:
        with self._pending_lock:
            self._pending_reset = True
        response.success = True
        response.message = (f"memory of {len(self._streams)} camera stream(s) cleared "
                            "before the next frame")
        self.get_logger().info(response.message)
        return response

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response
                   ) -> SetBool.Response:
        result = self.set_parameters([Parameter("enable", value=bool(request.data))])[0]
        response.success = result.successful
        response.message = ("enabled" if request.data else "disabled") if result.successful \
            else result.reason
        return response

    # Diagnostics ------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        now, device = time.monotonic(), str(self._segmenter.device)
        node = self.get_fully_qualified_name()
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [model_status(f"{node}: model", self._config.model or "default", device,
                                   self._segmenter.input_size, self._model_calls,
                                   self._model_frames, list(self._model_ms),
                                   self._segmenter.backend, self._segmenter.fallback)]
        for stream in self._streams:
            snapshot = stream.stats.snapshot(now)
            msg.status.append(stream_status(
                f"{node}: {stream.label}", snapshot, snapshot["bad"] - stream.last_bad,
                self._enabled, stream.topics["image"], stream.objects_in_memory, device))
            stream.last_bad = snapshot["bad"]
        self._diagnostics.publish(msg)


def _describe(exc: Exception) -> str:
    """A user error's message; the traceback of anything else (a bug to report)."""
    return str(exc) if isinstance(exc, VpsRosError) else traceback.format_exc()


def stream_topic(camera: str, topic: str) -> str:
    """``topic`` in the namespace of ``camera`` (absolute names stay as they are)."""
    if not camera or topic.startswith(("/", "~")):
        return topic
    return f"{camera}/{topic}"


class RosLogHandler(logging.Handler):
    """Python log records of vps_ros (e.g. the model's CUDA fallback warning) into the
    node's ROS logger, so they reach the console and /rosout under the node's name."""

    def __init__(self, logger: Any) -> None:
        super().__init__(logging.INFO)
        self._logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        message = f"{record.name}: {record.getMessage()}"
        if record.levelno >= logging.ERROR:
            self._logger.error(message)
        elif record.levelno >= logging.WARNING:
            self._logger.warning(message)
        else:
            self._logger.info(message)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(args: list[str] | None = None) -> None:
    dds = use_large_frame_profile()
    # Ctrl-C and SIGTERM interrupt this thread, not rclpy's handlers, which shut the
    # context down at once: a model call under way then published on invalid publishers
    # (a traceback per frame). Here the node stops first: the frame under way is
    # published, then the context goes.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    # Both set explicitly: a process started in the background by a non-interactive
    # shell inherits SIGINT ignored, and Python then leaves it ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        node = PerceptionNode()
        params.check_files(node, sys.argv if args is None else args)
    except VpsRosError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(exc))
        rclpy.try_shutdown()
        sys.exit(2)
    node.get_logger().info(dds)
    package_log = logging.getLogger("vps_ros")
    package_log.addHandler(RosLogHandler(node.get_logger()))
    package_log.setLevel(logging.INFO)
    package_log.propagate = False
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if node.get_parameter("autostart").value:
            if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                node.trigger_activate()
        while rclpy.ok():   # a wait with a timeout: Python delivers a signal between two
            executor.spin_once(timeout_sec=SIGNAL_POLL_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
