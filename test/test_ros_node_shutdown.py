"""Ctrl-C (SIGINT) or SIGTERM to a perception node in the middle of a model call ends it
cleanly: the frame under way is answered, then exit 0, no traceback (issue 27 item 7:
"publisher's context is invalid"), over real DDS with the node in its own process."""
import signal
import subprocess
import time

import numpy as np
import pytest

from testkit.pipeline_helpers import LOOSE_PARAMS, write_small_checkpoint
from vps_ros.imgmsg import from_array
from vps_ros.resources import config_path
from vps_ros.ros.node_config import node_command

pytestmark = [pytest.mark.slow, pytest.mark.ros]

# The small network at a 1024x2048 input: about 0.5 s a frame on one core (2-core
# development machine), far longer than a frame takes to arrive (milliseconds), so a
# signal sent IN_MODEL_S after a frame is published lands while the model runs.
NETWORK = {"input_height": 1024, "input_width": 2048}
IN_MODEL_S = 0.15


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_model_call_ends_the_node_without_a_traceback(tmp_path, ros_env,
                                                                        monkeypatch, signum):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from vps_ros.msg import PanopticObjectArray
    checkpoint = write_small_checkpoint(tmp_path / "small.pt")
    log_path = tmp_path / "node.log"
    overrides = {"model": str(checkpoint), "backend": "torch", "threads": 1,
                 "input_qos": "reliable", **LOOSE_PARAMS, **NETWORK}
    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.setenv(key, ros_env[key])
    context = rclpy.Context()
    rclpy.init(context=context)
    with open(log_path, "w") as log:
        node = subprocess.Popen(node_command(config_path("perception.yaml"), overrides),
                                env=ros_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        peer = rclpy.create_node("vps_test_camera", context=context)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        image = peer.create_publisher(Image, "image", qos)
        answers = []
        peer.create_subscription(PanopticObjectArray, "objects", answers.append, qos)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(peer)

        def spin(seconds: float, until=lambda: False, alive=lambda: node.poll() is None):
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not until() and alive():
                executor.spin_once(timeout_sec=0.01)

        def publish(index: int) -> None:
            fields = from_array(np.full((256, 512, 3), 40 + index, np.uint8), "rgb8")
            msg = Image(height=fields.height, width=fields.width, encoding="rgb8",
                        step=fields.step, data=fields.data)
            msg.header.stamp.sec, msg.header.frame_id = 100 + index, "camera"
            image.publish(msg)

        spin(120, until=lambda: image.get_subscription_count() > 0)
        publish(0)
        spin(120, until=lambda: answers)            # the node is configured and warm
        assert answers, log_path.read_text()
        publish(1)
        spin(IN_MODEL_S)
        node.send_signal(signum)
        code = node.wait(timeout=60)
        spin(5, until=lambda: len(answers) > 1, alive=lambda: True)   # sent before it went
    finally:
        if node.poll() is None:
            node.kill()
        rclpy.shutdown(context=context)
    text = log_path.read_text()
    assert code == 0, text
    assert "Traceback" not in text and "context is invalid" not in text, text
    assert "[ERROR]" not in text, text
    assert [a.header.stamp.sec for a in answers] == [100, 101]
