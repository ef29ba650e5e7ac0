"""``vps-ros replay --mode live``: the real perception node in its own process over DDS.
With --lossless it computes exactly what the offline replay computes; paced at the
recorded rate every frame is accounted for (answered or dropped)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from testkit.replay_helpers import (metrics, objects_of, panoptic_of, recorded, replay, small_model,
                            synthetic_frames, write_bag)

pytestmark = [pytest.mark.slow, pytest.mark.ros]
SCORES = ("VPQ", "VPQ_windows", "VPQ_things", "VPQ_stuff", "STQ", "AQ", "SQ", "per_class",
          "frames", "annotated_frames", "dropped_frames", "id_switches", "recoveries")


def _live(bag, out, model, params, env, *extra) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "vps_ros.cli", "replay", str(bag), "--image-topic",
            "/camera/image_raw", "--gt-topic", "/gt/panoptic", "--mode", "live", "--out",
            str(out), "--model", str(model), "--params", str(params), *extra]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def test_live_lossless_replay_gives_the_offline_metrics_and_outputs(tmp_path, ros_env):
    model, params = small_model(tmp_path)
    frames = synthetic_frames(8)[1]
    bag = write_bag(tmp_path / "drive", frames)
    assert replay(bag, tmp_path / "offline", model, params, "--no-video",
                  "--record", str(tmp_path / "offline.bag")) == 0
    done = _live(bag, tmp_path / "live", model, params, ros_env, "--lossless", "--no-video",
                 "--record", str(tmp_path / "live.bag"))
    node_log = (tmp_path / "live" / "node.log").read_text()
    assert done.returncode == 0, f"{done.stderr}\nnode log:\n{node_log}"
    assert "VPQ" in done.stdout and "Traceback" not in done.stderr
    offline, live = metrics(tmp_path / "offline"), metrics(tmp_path / "live")
    assert live["mode"] == "live" and live["dropped_frames"] == 0
    assert {k: live[k] for k in SCORES} == {k: offline[k] for k in SCORES}
    assert live["latency_ms"]["p50"] > 0

    assert_same_outputs(tmp_path / "offline.bag", tmp_path / "live.bag", ["camera"],
                        [k * 100_000_000 for k in range(len(frames))])


def assert_same_outputs(offline: Path, live: Path, cameras: list[str], stamps: list[int]) -> None:
    """The recorded panoptic maps and objects of both runs: the same, at ``stamps``."""
    a, b = recorded(offline), recorded(live)
    assert set(a) == set(b) == {f"/{c}/{name}" for c in cameras for name in ("panoptic",
                                                                                "objects")}
    for topic in a:
        assert [s for s, _ in a[topic]] == [s for s, _ in b[topic]] == stamps, topic
    for camera in cameras:
        for (_, x), (_, y) in zip(a[f"/{camera}/panoptic"], b[f"/{camera}/panoptic"]):
            np.testing.assert_array_equal(panoptic_of(x), panoptic_of(y))
        assert [objects_of(m) for _, m in a[f"/{camera}/objects"]] == \
            [objects_of(m) for _, m in b[f"/{camera}/objects"]]


def test_live_replay_at_the_recorded_rate_accounts_for_every_frame(tmp_path, ros_env):
    model, params = small_model(tmp_path)
    frames = synthetic_frames(8)[1]
    bag = write_bag(tmp_path / "drive", frames)
    done = _live(bag, tmp_path / "live", model, params, ros_env, "--rate", "2")
    assert done.returncode == 0, f"{done.stderr}\n{(tmp_path / 'live' / 'node.log').read_text()}"
    document = metrics(tmp_path / "live")
    assert document["frames"] == len(frames) and document["annotated_frames"] == len(frames)
    assert 0 <= document["dropped_frames"] < len(frames)
    assert (tmp_path / "live" / "tracks_timeline.png").is_file()


def test_live_replay_publishes_at_the_recorded_rate_times_rate(tmp_path, ros_env, monkeypatch):
    """The pacing itself: the player's publications (timed by a spy around its real
    publish) are 100 ms / rate apart, as the bag's stamps are; the node runs in its own
    process. The clock starts at the first publication, not before the node is up."""
    import time
    from vps_ros.pipeline import PipelineConfig
    from vps_ros.replay.cameras import Camera, replay_frames
    from vps_ros.ros.replay_live import LiveEngine
    from vps_ros.types import ClassTable
    model, params = small_model(tmp_path)
    bag = write_bag(tmp_path / "drive", synthetic_frames(8)[1])
    monkeypatch.setenv("ROS_DOMAIN_ID", ros_env["ROS_DOMAIN_ID"])
    sent = []
    publish = LiveEngine._publish

    def timed(self, frame):
        sent.append(time.monotonic())
        return publish(self, frame)
    monkeypatch.setattr(LiveEngine, "_publish", timed)
    camera = Camera("camera", "/camera/image_raw", "/gt/panoptic")
    with LiveEngine(PipelineConfig(model=str(model)), [camera], ClassTable.builtin("synthetic"),
                    params, False, 2.0) as engine:
        answered = list(engine.replay(replay_frames(bag, [camera])))
    assert len(answered) == 8 and len(sent) == 8
    gaps = np.diff(sent)                  # stamps 100 ms apart, at rate 2: 50 ms
    assert gaps.min() >= 0.045 and np.median(gaps) < 0.08, gaps
    assert sent[-1] - sent[0] >= 7 * 0.05 - 0.005


def test_live_lossless_with_two_cameras_scores_each_as_offline(tmp_path, ros_env):
    from test_replay_offline import _two_camera_bag
    from vps_ros.replay.cameras import cameras_of
    model, params = small_model(tmp_path)
    front, rear = synthetic_frames(5, 0)[1], synthetic_frames(5, 1)[1]
    bag = _two_camera_bag(tmp_path / "two", front, rear)
    topics = ["--image-topic", "/front/image", "--gt-topic", "/front/gt",
              "--image-topic", "/rear/image", "--gt-topic", "/rear/gt", "--no-video"]
    assert replay(bag, tmp_path / "offline", model, params, *topics[4:],
                  "--record", str(tmp_path / "offline.bag"),
                  image_topic="/front/image", gt_topic="/front/gt") == 0
    mixed = cameras_of(["/front/image", "/rear/image"], ["/front/gt", "/rear/gt"])
    assert [(c.name, c.gt_topic) for c in mixed] == [("front", "/front/gt"), ("rear", "/rear/gt")]
    argv = [sys.executable, "-m", "vps_ros.cli", "replay", str(bag), "--mode", "live",
            "--lossless", "--out", str(tmp_path / "live"), "--model", str(model),
            "--params", str(params), *topics, "--record", str(tmp_path / "live.bag")]
    done = subprocess.run(argv, env=ros_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{done.stderr}\n{(tmp_path / 'live' / 'node.log').read_text()}"
    offline, live = metrics(tmp_path / "offline"), metrics(tmp_path / "live")
    assert list(live["cameras"]) == ["front", "rear"]
    assert {k: live[k] for k in SCORES} == {k: offline[k] for k in SCORES}
    for camera in ("front", "rear"):
        assert {k: live["cameras"][camera][k] for k in SCORES} == \
            {k: offline["cameras"][camera][k] for k in SCORES}
    assert_same_outputs(tmp_path / "offline.bag", tmp_path / "live.bag", ["front", "rear"],
                        [1_000_000_000 + k * 100_000_000 for k in range(len(front))])


def test_a_player_that_fails_to_start_stops_the_node_it_started(tmp_path, ros_env,
                                                                 monkeypatch):
    """The node goes straight to active; a failure after starting it (here: the player's
    DDS setup) must not leave it running without a parent. Both run on loopback
    discovery whatever the caller's range."""
    from vps_ros.pipeline import PipelineConfig
    from vps_ros.replay.cameras import Camera
    from vps_ros.ros.replay_live import LiveEngine
    from vps_ros.types import ClassTable
    model, params = small_model(tmp_path)
    monkeypatch.setenv("ROS_DOMAIN_ID", ros_env["ROS_DOMAIN_ID"])
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")

    def no_player(self):
        raise RuntimeError("the player could not start")
    monkeypatch.setattr(LiveEngine, "_start_player", no_player)
    engine = LiveEngine(PipelineConfig(model=str(model)), [Camera("cam", "/camera/image_raw")],
                        ClassTable.builtin("synthetic"), params, True, None)
    with pytest.raises(RuntimeError, match="the player could not start"):
        engine.__enter__()
    assert engine.process.poll() is not None
    assert engine.process.args == engine.command
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
