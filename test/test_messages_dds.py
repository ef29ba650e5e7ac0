"""The generated messages cross real DDS between two processes, every field intact."""
import json

import numpy as np
import pytest

from conftest import REPO, python_process

pytestmark = [pytest.mark.slow, pytest.mark.ros]


def test_panoptic_object_array_round_trips_between_processes(ros_env):
    f32 = lambda v: float(np.float32(v))  # noqa: E731  (the wire type is float32)
    sent = {
        "stamp": [1700000000, 123456789], "frame_id": "camera_front", "label_divisor": 1000,
        "objects": [
            {"id": 7, "panoptic_id": 6007, "class_id": 6, "class_name": "car", "is_thing": True,
             "score": f32(0.93), "area": 1234, "bbox": [10, 20, 30, 40],
             "velocity_x": f32(-1.5), "velocity_y": f32(0.25), "age": 12, "frames_since_seen": 0},
            {"id": 0, "panoptic_id": 0, "class_id": 0, "class_name": "road", "is_thing": False,
             "score": f32(0.5), "area": 99999, "bbox": [0, 100, 512, 156],
             "velocity_x": 0.0, "velocity_y": 0.0, "age": 0, "frames_since_seen": 0},
            {"id": 4294967295, "panoptic_id": 7999, "class_id": 65535, "class_name": "t\u00fcr",
             "is_thing": True, "score": 0.0, "area": 0, "bbox": [1, 2, 3, 4],
             "velocity_x": f32(3.75), "velocity_y": 0.0, "age": 4294967295,
             "frames_since_seen": 20},
        ],
    }
    peer = str(REPO / "testkit" / "dds_peer.py")
    sub = python_process([peer, "sub"], ros_env)
    assert sub.stdout.readline().strip() == "ready", sub.stderr.read()
    pub = python_process([peer, "pub", json.dumps(sent)], ros_env)
    try:
        out, err = sub.communicate(timeout=60)
        assert sub.returncode == 0, err
        assert pub.wait(timeout=30) == 0, pub.stderr.read()
    finally:
        for p in (sub, pub):
            if p.poll() is None:
                p.kill()
    received = json.loads(out.strip().splitlines()[-1])
    assert received == sent
