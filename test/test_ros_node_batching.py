"""perception_node's queue, batching and per-frame error handling, driven turn by turn:
the node runs in this process without its inference thread, frames go in through its
own subscription callbacks and each ``process_waiting()`` is one turn of that thread,
so what is batched does not depend on DDS timing (test_ros_node_dds.py checks the
plumbing over real DDS)."""
import time

import numpy as np
import pytest
import rclpy
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from std_msgs.msg import Header

from testkit.pipeline_helpers import LOOSE, LOOSE_PARAMS, synthetic_frames, write_small_checkpoint
from vps_ros.model import Segmenter
from vps_ros.ros.convert import image_msg
from vps_ros.ros import perception_node
from vps_ros.ros.perception_node import PerceptionNode

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_small_checkpoint(tmp_path_factory.mktemp("model") / "small.pt")


@pytest.fixture
def context(ros_env, monkeypatch):
    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.setenv(key, ros_env[key])
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


@pytest.fixture
def start_node(context, checkpoint):
    nodes = []

    def start(**params) -> PerceptionNode:
        values = {"model": str(checkpoint), **LOOSE_PARAMS, "threads": 1,
                  "output_scale": "model", **params}
        node = PerceptionNode(inference_thread=False, context=context,
                              parameter_overrides=[Parameter(k, value=v)
                                                   for k, v in values.items()])
        nodes.append(node)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        return node
    yield start
    for node in nodes:
        node.stop()
        node.destroy_node()


def send(node: PerceptionNode, topic: str, rgb: np.ndarray, stamp_s: int) -> None:
    """Hand ``rgb`` to the node's subscription callback of ``topic``, as DDS would."""
    callback = {s.topic_name: s.callback for s in node.subscriptions}[topic]
    header = Header(frame_id="camera_optical")
    header.stamp.sec = stamp_s
    callback(image_msg(rgb, "rgb8", header))


def test_frames_of_all_waiting_cameras_go_through_one_model_call(start_node):
    node = start_node(cameras=["front", "left"])
    front, left = synthetic_frames(4, 0), synthetic_frames(3, 1)
    send(node, "/front/image", front[0].image, 1)
    send(node, "/left/image", left[0].image, 1)
    assert node.process_waiting() == 2
    counts = node.counters()
    assert counts["model"] == {"calls": 1, "frames": 2}
    assert counts["front"]["processed"] == counts["left"]["processed"] == 1

    for k in (1, 2, 3):                   # one frame waits per camera: the newest
        send(node, "/front/image", front[k].image, 1 + k)
    send(node, "/left/image", left[1].image, 2)
    assert node.process_waiting() == 2
    send(node, "/left/image", left[2].image, 3)
    assert node.process_waiting() == 1    # only one camera has a frame waiting
    assert node.process_waiting() == 0
    counts = node.counters()
    assert counts["model"] == {"calls": 3, "frames": 5}
    assert counts["front"] == {"received": 4, "processed": 2, "dropped": 2, "bad": 0,
                               "refused": 0, "resets": 0}
    assert counts["left"] == {"received": 3, "processed": 3, "dropped": 0, "bad": 0,
                              "refused": 0, "resets": 0}


def test_a_frame_with_more_things_than_track_ids_is_logged_and_the_node_goes_on(
        start_node, checkpoint, capfd):
    frames = synthetic_frames(2)
    segmenter = Segmenter.from_checkpoint(checkpoint)
    segmenter.postprocess = LOOSE
    things = int(segmenter.segment([frames[0].image])[0].is_thing.sum())
    assert things > 1                    # label_divisor 2 leaves one track id
    node = start_node(label_divisor=2)
    send(node, "/image", frames[0].image, 1)
    assert node.process_waiting() == 1
    assert node.counters()["camera"]["bad"] == 1
    assert node.counters()["camera"]["processed"] == 0
    assert (f"dropped a frame of image: tracking failed: tracker frame 0: {things} thing "
            "segments, but label_divisor 2 allows only 1 track ids") in capfd.readouterr().err

    # no segment passes a class threshold of 1: the next frame fits and goes through
    assert node.set_parameters([Parameter("postprocess.class_threshold", value=1.0)])[0] \
        .successful
    send(node, "/image", frames[1].image, 2)
    assert node.process_waiting() == 1
    assert node.counters()["camera"] == {"received": 2, "processed": 1, "dropped": 0,
                                         "bad": 1, "refused": 0,
                                         "resets": 0}


def test_bad_frame_errors_are_logged_once_per_period_saying_how_many_were_held(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(perception_node.time, "monotonic", lambda: clock[0])
    lines = []
    throttle = perception_node.Throttle(5.0)
    for k in range(3):
        lines.append(throttle(f"bad {k}"))
        clock[0] += 1.0
    assert lines == ["bad 0", None, None]
    clock[0] = 105.0
    lines = ["bad 0", throttle("bad 3")]
    assert lines == ["bad 0", "bad 3 (2 more since the last report)"]


def test_images_are_published_only_while_someone_subscribes(start_node, context, monkeypatch):
    """panoptic (8 MiB at 1080p), panoptic_color and overlay cost conversion and DDS
    traffic: none without a subscriber; objects always."""
    from sensor_msgs.msg import Image
    node = start_node()
    published = []
    for name, publisher in node._streams[0].publishers.items():
        monkeypatch.setattr(publisher, "publish",
                            lambda msg, name=name, real=publisher.publish:
                            (published.append(name), real(msg)))
    frames = synthetic_frames(2)
    send(node, "/image", frames[0].image, 1)
    assert node.process_waiting() == 1
    assert published == ["objects"]

    viewer = rclpy.create_node("viewer", context=context)
    viewer.create_subscription(Image, "/panoptic", lambda msg: None, 10)
    panoptic = node._streams[0].publishers["panoptic"]
    for _ in range(100):
        if panoptic.get_subscription_count():
            break
        time.sleep(0.05)
    published.clear()
    send(node, "/image", frames[1].image, 2)
    assert node.process_waiting() == 1
    assert published == ["panoptic", "objects"]
    viewer.destroy_node()
