"""perception_node and stamps going backwards (issue 27 item 8): each one clears that
camera's memory, counted in /diagnostics ("memory resets"), with one warning per camera
per period, not one per frame (a bag looping every frame would flood the log)."""
import numpy as np
import pytest

from test_ros_node_limits import _send, checkpoint, node  # noqa: F401 (fixtures)

pytestmark = pytest.mark.ros


def test_stamps_going_backwards_warn_once_and_are_counted(node, capfd):  # noqa: F811
    image = np.full((64, 128, 3), 90, np.uint8)
    for stamp_s in (50, 40, 30, 20, 10):            # every frame after the first goes back
        _send(node, "/front/image", image, stamp_s)
        assert node.process_waiting() == 1
    err = capfd.readouterr().err
    assert err.count("before the previous frame's: memory cleared") == 1, err
    assert "front: stamp 40000000000 ns is 10000.0 ms before the previous frame's" in err
    assert node.counters()["front"]["resets"] == 4
    assert node.counters()["left"]["resets"] == 0
