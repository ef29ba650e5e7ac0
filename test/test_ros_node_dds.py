"""perception_node over real DDS, in separate processes: the node (started as the
replay and the launch file start it) and a driver (testkit/node_driver.py) that publishes
synthetic frames and collects the outputs. What the node publishes must be what the
Pipeline computes in-process for the same frames."""
import json
import signal
from dataclasses import replace
import subprocess

import numpy as np
import pytest
import torch

from conftest import REPO, python_process
from testkit.pipeline_helpers import (LOOSE, LOOSE_PARAMS, save_frames, synthetic_frames,
                              write_small_checkpoint)
from vps_ros.imgmsg import from_array, to_array
from vps_ros.pipeline import Pipeline, PipelineConfig, load_segmenter
from vps_ros.resources import config_path
from vps_ros.ros.node_config import node_command
from vps_ros.tracking import TrackerConfig

pytestmark = [pytest.mark.slow, pytest.mark.ros]

DRIVER = REPO / "testkit" / "node_driver.py"
# One model thread in the node and in the reference run: the same arithmetic, and
# no thread oversubscription on a loaded 2-core machine.
# torch: a new camera size on an engine backend runs on torch until its session is
# built in the background (docs/reliability.md), so which network answers a frame
# would depend on timing; the engines over DDS are test_ros_node_backend's.
NODE_PARAMS = {**LOOSE_PARAMS, "threads": 1, "backend": "torch"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_small_checkpoint(tmp_path_factory.mktemp("model") / "small.pt")


def run(tmp_path, ros_env, overrides: dict, plan: dict, frames: list) -> tuple[list, dict, str]:
    """Start the node with ``overrides``, run the driver's ``plan``, stop the node.
    Returns (step results, received panoptic maps, node log)."""
    plan = {**plan, "frames": str(save_frames(tmp_path / "frames.npz", frames))}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    log_path = tmp_path / "node.log"
    with open(log_path, "w") as log:
        node = subprocess.Popen(node_command(config_path("perception.yaml"), overrides),
                                env=ros_env, stdout=log, stderr=subprocess.STDOUT)
        driver = python_process([str(DRIVER), str(tmp_path / "plan.json"), str(tmp_path)],
                                ros_env)
        try:
            _, err = driver.communicate(timeout=180)
            node.send_signal(signal.SIGINT)
            node_rc = node.wait(timeout=30)
        finally:
            for process in (driver, node):
                if process.poll() is None:
                    process.kill()
    node_log = log_path.read_text()
    assert driver.returncode == 0, f"driver failed:\n{err}\nnode log:\n{node_log}"
    assert node_rc == 0, f"node exit code {node_rc}:\n{node_log}"
    results = json.loads((tmp_path / "results.json").read_text())
    with np.load(tmp_path / "panoptic.npz") as data:
        panoptic = {k: data[k] for k in data.files}
    return results, panoptic, node_log


def as_received(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """The RGB image the node decodes from ``rgb`` sent in ``encoding`` (mono8 drops
    colour)."""
    fields = from_array(rgb, encoding)
    return to_array(fields.height, fields.width, encoding, fields.step, fields.data)


def assert_same_frame(received: dict, panoptic: np.ndarray, expected) -> None:
    np.testing.assert_array_equal(panoptic, expected.panoptic)
    assert [(o["id"], o["panoptic_id"], o["class_id"], o["frames_since_seen"])
            for o in received["objects"]] == \
        [(o.track_id, o.class_id * 1000 + o.track_id, o.class_id, o.frames_since_seen)
         for o in expected.objects]


def test_a_synthetic_sequence_comes_back_as_the_pipeline_computes_it(tmp_path, ros_env,
                                                                      checkpoint):
    frames = synthetic_frames(6)
    encodings = [("rgb8", 0), ("bgr8", 3), ("rgba8", 0), ("bgra8", 1), ("mono8", 2), ("rgb8", 5)]
    steps = [{"op": "wait_matched"}]
    steps += [{"op": "frame", "image": i, "encoding": enc, "pad": pad,
               "visual": ["overlay", "panoptic_color"] if i == 2 else []}
              for i, (enc, pad) in enumerate(encodings)]
    results, panoptic, _ = run(tmp_path, ros_env, {"model": str(checkpoint), **NODE_PARAMS,
                                                   "input_qos": "reliable"},
                               {"steps": steps, "visual": ["overlay", "panoptic_color"]},
                               frames)

    reference = Pipeline.from_config(PipelineConfig(model=str(checkpoint), backend="torch",
                                                    postprocess=LOOSE, threads=1))
    sent = results[1:]
    stamps = [r["stamp_ns"] for r in sent]
    assert stamps == sorted(stamps) and all(r["received"] for r in sent)
    things = 0
    for i, (result, (enc, _)) in enumerate(zip(sent, encodings)):
        out = result["cameras"]["camera"]
        assert out["panoptic_encoding"] == "32SC1"
        assert out["frame_id"] == out["panoptic_frame_id"] == "camera_optical"
        expected = reference.step(as_received(frames[i].image, enc), result["stamp_ns"])
        assert_same_frame(out, panoptic[f"camera_{i + 1}"], expected)
        things += sum(o["is_thing"] for o in out["objects"])
    assert things > 0
    visual = sent[2]["cameras"]["camera"]
    for name in ("overlay", "panoptic_color"):
        assert visual[name] == {"encoding": "bgr8", "height": 64, "width": 128,
                                "frame_id": "camera_optical"}


def test_a_1080p_camera_reaches_the_node_and_a_best_effort_viewer_with_the_defaults(
        tmp_path, ros_env, checkpoint):
    """A camera driver publishing raw 1920x1080 frames reliable, as most do, with Fast
    DDS's default transports, and a viewer subscribing best effort (as our rviz2 config
    did): over those transports a best-effort subscriber of a reliable 1080p publisher
    gets nearly nothing (docs/cameras.md). With the defaults (input_qos auto, the package's Fast DDS
    profile) every frame reaches the node and every 8 MiB panoptic image the viewer."""
    ros_env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    frames = synthetic_frames(3, 0, 1080, 1920)
    steps = [{"op": "wait_matched"}, {"op": "input_qos", "reliability": "reliable"}]
    steps += [{"op": "frame", "image": i} for i in range(3)]
    results, panoptic, node_log = run(tmp_path, ros_env, {"model": str(checkpoint),
                                                          **NODE_PARAMS},
                                      {"steps": steps, "outputs_reliable": False}, frames)

    assert "DDS: Fast DDS profile" in node_log and "fastdds.xml" in node_log
    assert results[1]["ok"], results[1]
    reference = Pipeline.from_config(PipelineConfig(model=str(checkpoint), backend="torch",
                                                    postprocess=LOOSE, threads=1))
    for i, result in enumerate(results[2:]):
        assert result["received"], f"frame {i} or its outputs never arrived"
        expected = reference.step(frames[i].image, result["stamp_ns"])
        assert panoptic[f"camera_{i + 2}"].shape == (1080, 1920)
        assert_same_frame(result["cameras"]["camera"], panoptic[f"camera_{i + 2}"], expected)


def test_two_compressed_cameras_keep_their_own_memory_and_namespaces(tmp_path, ros_env,
                                                                     checkpoint):
    front, left = synthetic_frames(4, 0, 96, 192), synthetic_frames(4, 1, 96, 192)
    frames = front + left
    steps = [{"op": "wait_matched"}]
    for i in range(4):
        if i == 2:   # decoded when the model takes it: wait until it has been counted
            steps += [{"op": "bad", "kind": "corrupt_jpeg", "camera": "front"},
                      {"op": "diagnostics", "status": "front", "at_least": {"bad frames": 1}}]
        steps += [{"op": "frame", "image": {"front": i, "left": 4 + i}}]
    steps += [{"op": "diagnostics", "status": "front",
               "at_least": {"bad frames": 1, "frames processed": 4}},
              {"op": "diagnostics", "status": "left", "at_least": {"frames processed": 4}},
              {"op": "diagnostics", "status": "model", "fresh": True}]
    overrides = {"model": str(checkpoint), **NODE_PARAMS, "cameras": ["front", "left"],
                 "input_transport": "compressed", "input_qos": "reliable",
                 "output_scale": "model", "diagnostics_period": 0.2}
    results, panoptic, _ = run(tmp_path, ros_env, overrides,
                               {"steps": steps, "cameras": ["front", "left"],
                                "transport": "compressed"}, frames)

    config = PipelineConfig(model=str(checkpoint), backend="torch", postprocess=LOOSE,
                            threads=1, output_scale="model")
    segmenter = load_segmenter(config)
    reference = {"front": Pipeline.from_config(config, segmenter),
                 "left": Pipeline.from_config(config, segmenter)}
    sent = [(i, r) for i, r in enumerate(results) if r["op"] == "frame"]
    assert len(sent) == 4
    for k, (index, result) in enumerate(sent):
        assert result["received"]
        for cam, frame in (("front", front[k]), ("left", left[k])):
            out = result["cameras"][cam]
            assert out["frame_id"] == f"{cam}_optical"
            expected = reference[cam].step(frame.image, result["stamp_ns"])
            assert expected.panoptic.shape == (64, 128)      # the model's input size
            assert_same_frame(out, panoptic[f"{cam}_{index}"], expected)
    diag_front, diag_left, diag_model = (r["values"] for r in results[-3:])
    assert all(r["ok"] for r in results[-3:])
    assert diag_front["bad frames"] == "1" and diag_left["bad frames"] == "0"
    assert diag_front["input topic"] == "front/image/compressed"
    # /diagnostics reports the batching (which frames share a call is timing here;
    # test_ros_node_batching.py pins it): the 8 decodable frames over the calls
    assert int(diag_model["model calls"]) * float(diag_model["frames per call"]) == \
        pytest.approx(8, abs=0.05)


def test_lifecycle_services_and_parameters_at_run_time(tmp_path, ros_env, checkpoint):
    frames = synthetic_frames(9)
    missing = tmp_path / "missing.pt"
    named = [
        ("unconfigured", {"op": "state"}),
        ("set_model", {"op": "set_param", "name": "model", "value": str(checkpoint)}),
        ("configure", {"op": "transition", "name": "configure"}),
        ("inactive", {"op": "state"}),
        ("while_inactive", {"op": "frame", "image": 0, "expect": False, "wait": 0.5}),
        ("activate", {"op": "transition", "name": "activate"}),
        ("matched", {"op": "wait_matched"}),
        ("f0", {"op": "frame", "image": 0}),
        ("f1", {"op": "frame", "image": 1}),
        ("set_tau", {"op": "set_param", "name": "tracker.tau", "value": 0}),
        ("f2", {"op": "frame", "image": 2}),
        ("alpha_too_big", {"op": "set_param", "name": "tracker.alpha", "value": 1.5}),
        ("temperature_zero", {"op": "set_param", "name": "tracker.temperature", "value": 0.0}),
        ("model_while_active", {"op": "set_param", "name": "model", "value": "/elsewhere.pt"}),
        ("reset", {"op": "reset"}),
        ("f3", {"op": "frame", "image": 3}),
        ("disable", {"op": "enable", "data": False}),
        ("while_disabled", {"op": "frame", "image": 4, "expect": False, "wait": 0.5}),
        ("enable", {"op": "enable", "data": True}),
        ("f5", {"op": "frame", "image": 5}),
        ("strict", {"op": "set_param", "name": "postprocess.class_threshold", "value": 0.95}),
        ("f6", {"op": "frame", "image": 6}),
        ("deactivate", {"op": "transition", "name": "deactivate"}),
        ("while_deactivated", {"op": "frame", "image": 7, "expect": False, "wait": 0.5}),
        ("reactivate", {"op": "transition", "name": "activate"}),
        ("matched_again", {"op": "wait_matched"}),
        ("f8", {"op": "frame", "image": 8}),
        ("counted", {"op": "diagnostics", "status": "camera", "fresh": True,
                     "at_least": {"frames processed": 7}}),
        ("deactivate_again", {"op": "transition", "name": "deactivate"}),
        ("cleanup", {"op": "transition", "name": "cleanup"}),
        ("cleaned", {"op": "state"}),
    ]
    index = {name: i for i, (name, _) in enumerate(named)}
    results, panoptic, log = run(tmp_path, ros_env, {"model": str(missing), **NODE_PARAMS,
                                                     "input_qos": "reliable",
                                                     "diagnostics_period": 0.2},
                                 {"steps": [step for _, step in named]}, frames)
    got = {name: results[i] for name, i in index.items()}
    assert got["unconfigured"]["label"] == "unconfigured"
    assert f"configure failed: {missing}: checkpoint file not found" in log
    assert got["set_model"]["successful"] and got["configure"]["success"]
    assert got["inactive"]["label"] == "inactive"
    for name in ("activate", "reset", "disable", "enable", "deactivate", "reactivate",
                 "deactivate_again", "cleanup"):
        assert got[name]["success"], name
    for name in ("while_inactive", "while_disabled", "while_deactivated"):
        assert not got[name]["received"], name
    # the frame sent while disabled reached the node and was never processed, not even
    # late (inactive and deactivated, the node has no subscription to receive with)
    assert got["counted"]["ok"]
    assert got["counted"]["values"]["frames received"] == "8"
    assert got["counted"]["values"]["frames processed"] == "7"
    assert got["set_tau"] == {"op": "set_param", "successful": True, "reason": ""}
    assert got["strict"]["successful"]
    assert not got["alpha_too_big"]["successful"]
    assert "out of range" in got["alpha_too_big"]["reason"]
    assert not got["temperature_zero"]["successful"]
    assert "must be > 0.0" in got["temperature_zero"]["reason"]
    assert not got["model_while_active"]["successful"]
    assert "read at configure" in got["model_while_active"]["reason"]
    assert got["cleaned"]["label"] == "unconfigured"

    config = PipelineConfig(model=str(checkpoint), backend="torch", postprocess=LOOSE, threads=1)
    reference = Pipeline.from_config(config)
    for name, image in (("f0", 0), ("f1", 1), ("f2", 2), ("f3", 3), ("f5", 5), ("f6", 6),
                        ("f8", 8)):
        if name == "f2":
            reference.update_tracker(TrackerConfig(tau=0))
        if name == "f3":
            reference.reset()
        if name == "f6":
            reference.segmenter.postprocess = replace(LOOSE, class_threshold=0.95)
        result = got[name]
        assert result["received"], name
        expected = reference.step(frames[image].image, result["stamp_ns"])
        assert_same_frame(result["cameras"]["camera"], panoptic[f"camera_{index[name]}"],
                          expected)
    assert not any(o["frames_since_seen"] for o in got["f2"]["cameras"]["camera"]["objects"])
    assert len(got["f5"]["cameras"]["camera"]["objects"]) > \
        len(got["f6"]["cameras"]["camera"]["objects"])


def test_bad_input_costs_only_that_frame(tmp_path, ros_env, checkpoint):
    frames = synthetic_frames(6)
    steps = [{"op": "wait_matched"}, {"op": "frame", "image": 0, "stamp_ns": 1_000_000_000}]
    for i, kind in enumerate(("unknown_encoding", "short_data", "zero_size"), start=1):
        steps += [{"op": "bad", "kind": kind, "stamp_ns": i * 1_000_000_000 + 1},
                  {"op": "frame", "image": i, "stamp_ns": (i + 1) * 1_000_000_000}]
    steps += [{"op": "frame", "image": 4, "stamp_ns": 500_000_000},        # from the past
              {"op": "frame", "image": 5, "stamp_ns": 600_000_000},
              {"op": "diagnostics", "status": "camera", "fresh": True,
               "at_least": {"bad frames": 3, "memory resets": 1, "frames processed": 6}},
              {"op": "diagnostics", "status": "model", "at_least": {}}]
    results, _, log = run(tmp_path, ros_env, {"model": str(checkpoint), **NODE_PARAMS,
                                              "device": "cuda", "input_qos": "reliable",
                                              "diagnostics_period": 0.2},
                          {"steps": steps}, frames)
    good = [r for r in results if r["op"] == "frame"]
    assert len(good) == 6 and all(r["received"] for r in good)
    camera, model = results[-2], results[-1]
    assert camera["ok"] and model["ok"]
    counts = {key: camera["values"][key] for key in ("frames received", "frames processed",
                                                     "bad frames", "memory resets")}
    assert counts == {"frames received": "9", "frames processed": "6", "bad frames": "3",
                      "memory resets": "1"}
    expected_device = "cuda" if torch.cuda.is_available() else "cpu"
    assert model["values"]["device"] == expected_device
    assert ("no CUDA device is available" in log) == (expected_device == "cpu")
    # the first bad frame is logged at once (later ones may fall in the throttle period)
    assert "dropped a frame: image: unsupported encoding 'yuv422_yuy2'" in log
    assert log.count("before the previous frame's: memory cleared") == 1


@pytest.mark.parametrize("yaml_text, messages", [
    ("tracker:\n      alpha: 1\n", ["parameter tracker.alpha", "DOUBLE"]),
    ("tracker:\n      alpha: 2.5\n", ["parameter tracker.alpha", "out of range"]),
    ("tracker:\n      temperature: 0.0\n", ["tracker.temperature: 0.0 is out of range"]),
])
def test_a_bad_parameters_file_stops_the_node_naming_the_parameter(tmp_path, ros_env,
                                                                    yaml_text, messages):
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    " + yaml_text)
    node = subprocess.run(node_command(params), env=ros_env, capture_output=True, text=True,
                          timeout=60)
    assert node.returncode == 2, node.stderr
    for message in messages:
        assert message in node.stderr
