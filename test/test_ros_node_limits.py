"""perception_node and frames beyond its bounds (docs/reliability.md, Bounds): a frame
beyond the maximum input size is dropped before it is queued, with one throttled error
line and a count in /diagnostics, the other cameras' frames go on; a tall thin frame
within it runs at the capped network input. Turn by turn in this process (the node's
own callbacks, real rclpy), then once over real DDS with the node in its own process."""
from types import SimpleNamespace

import numpy as np
import pytest
import rclpy
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from std_msgs.msg import Header

from testkit.pipeline_helpers import LOOSE_PARAMS, synthetic_frames, write_small_checkpoint
from vps_ros.ros.convert import image_msg
from vps_ros.ros.perception_node import PerceptionNode

pytestmark = pytest.mark.ros

REFUSED = ("dropped a frame: front/image: frame 4x20000 is beyond the maximum input size "
           "8192x8192 (limits.max_image_width/max_image_height): refused")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_small_checkpoint(tmp_path_factory.mktemp("model") / "small.pt")


@pytest.fixture
def node(ros_env, monkeypatch, checkpoint):
    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.setenv(key, ros_env[key])
    context = rclpy.Context()
    rclpy.init(context=context)
    values = {"model": str(checkpoint), **LOOSE_PARAMS, "threads": 1, "backend": "torch",
              "output_scale": "model", "cameras": ["front", "left"]}
    node = PerceptionNode(inference_thread=False, context=context,
                          parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    yield node
    node.stop()
    node.destroy_node()
    rclpy.shutdown(context=context)


def _send(node, topic, rgb, stamp_s):
    callback = {s.topic_name: s.callback for s in node.subscriptions}[topic]
    header = Header(frame_id="camera_optical")
    header.stamp.sec = stamp_s
    callback(image_msg(rgb, "rgb8", header))


def test_a_frame_beyond_the_maximum_size_is_dropped_once_logged_and_counted(node, capfd):
    left = synthetic_frames(2, 1)
    for k in range(3):          # 20000 high, 4 wide: 240 KB, refused before queueing
        _send(node, "/front/image", np.zeros((20000, 4, 3), np.uint8), k + 1)
    _send(node, "/left/image", left[0].image, 1)
    assert node.process_waiting() == 1                # the left frame only
    err = capfd.readouterr().err
    assert err.count("dropped a frame") == 1 and REFUSED in err
    counts = node.counters()
    assert counts["front"] == {"received": 3, "processed": 0, "dropped": 0, "bad": 3,
                               "refused": 3, "resets": 0}
    assert counts["left"]["processed"] == 1
    # 8000 high, 2 wide: within the maximum, at the capped input 512x128 (4 x 128)
    _send(node, "/front/image", np.full((8000, 2, 3), 80, np.uint8), 5)
    assert node.process_waiting() == 1
    assert node.counters()["front"]["processed"] == 1
    assert node._segmenter.network_size([(8000, 2)]) == (512, 128)


@pytest.mark.slow
def test_over_dds_the_node_refuses_the_frame_and_goes_on(tmp_path, ros_env, checkpoint):
    from test_ros_node_dds import NODE_PARAMS, run
    frames = [SimpleNamespace(image=np.zeros((20000, 4, 3), np.uint8)),
              SimpleNamespace(image=np.full((8000, 2, 3), 80, np.uint8)),
              synthetic_frames(1)[0]]
    steps = [{"op": "wait_matched"},
             {"op": "frame", "image": 0, "expect": False, "wait": 1.0},
             {"op": "diagnostics", "status": "camera",
              "at_least": {"frames refused (too large)": 1}},
             {"op": "frame", "image": 1}, {"op": "frame", "image": 2}]
    results, panoptic, node_log = run(tmp_path, ros_env,
                                      {"model": str(checkpoint), **NODE_PARAMS,
                                       "backend": "torch", "input_qos": "reliable",
                                       "diagnostics_period": 0.2},
                                      {"steps": steps}, frames)
    assert not results[1]["received"]
    assert results[2]["ok"], results[2]
    assert results[2]["values"]["bad frames"] == "1"
    assert results[3]["received"] and panoptic["camera_3"].shape == (8000, 2)
    assert results[4]["received"]
    assert node_log.count("frame 4x20000 is beyond the maximum input size") == 1
