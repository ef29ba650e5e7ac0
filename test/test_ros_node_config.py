"""The node's parameters (ROS-free part): one declaration per parameter, the shipped
parameters file, run-time change checks, the command line that starts the node."""
import dataclasses
import json

import pytest
import yaml

from vps_ros.config import leaves
from vps_ros.errors import ConfigError
from vps_ros.pipeline import PipelineConfig
from vps_ros.resources import config_path
from vps_ros.ros.node_config import (NodeConfig, check_change, config_from_values,
                                     is_runtime, load_node_config, node_command,
                                     node_parameters)


def _defaults() -> dict:
    return {leaf.name: leaf.default for leaf in node_parameters()}


def test_every_field_is_one_parameter_with_a_description():
    names = [leaf.name for leaf in node_parameters()]
    assert len(names) == len(set(names))
    assert {"model", "device", "threads", "output_scale", "label_divisor", "cameras",
            "input_transport", "input_qos", "tracker.lam", "tracker.temperature",
            "tracker.alpha", "tracker.tau", "postprocess.class_threshold",
            "topics.image", "topics.panoptic"} <= set(names)
    assert {f.name for f in dataclasses.fields(PipelineConfig)} <= {n.split(".")[0] for n in names}
    assert all(leaf.meta.get("doc") for leaf in node_parameters())


def test_the_shipped_parameters_file_lists_every_parameter_at_its_default():
    data = yaml.safe_load(config_path("perception.yaml").read_text())
    assert list(data) == ["/**"]
    flat = {leaf.name for leaf in leaves(NodeConfig)}
    listed = set()

    def walk(mapping, prefix=""):
        for key, value in mapping.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                listed.add(f"{prefix}{key}")
    walk(data["/**"]["ros__parameters"])
    assert listed == flat
    assert load_node_config(config_path("perception.yaml")) == NodeConfig()
    assert config_from_values(_defaults()) == NodeConfig()


def test_values_of_the_parameters_file_keep_their_ros_types():
    """rclpy declares each parameter with its default's type: a float written as an
    integer in the file would fail at start-up."""
    data = yaml.safe_load(config_path("perception.yaml").read_text())["/**"]["ros__parameters"]
    for leaf in node_parameters():
        value = data
        for part in leaf.name.split("."):
            value = value[part]
        assert type(value) is type(leaf.default) or (
            isinstance(value, list) and isinstance(leaf.default, list)), leaf.name


@pytest.mark.parametrize("changes, configured, reason", [
    ({"tracker.alpha": 0.6}, True, ""),
    ({"postprocess.class_threshold": 0.2, "tracker.tau": 5}, True, ""),
    ({"enable": False}, True, ""),
    ({"tracker.alpha": 1.5}, True, "tracker.alpha: 1.5 is out of range, must be <= 1.0"),
    ({"tracker.temperature": 0.0}, True, "must be > 0.0"),
    ({"tracker.mode": "magic"}, True, "'magic' is not one of"),
    ({"output_scale": "half"}, True, "is not one of 'input', 'model'"),
    ({"model": "/x.pt"}, True, "model is read at configure"),
    ({"model": "/x.pt"}, False, ""),
    ({"input_height": 100, "input_width": 128}, False, "not a multiple of 32"),
    ({"cameras": ["front", "front"]}, False, "names must be unique"),
    ({"cameras": ["front", ""]}, False, "empty name is only allowed"),
    ({"cameras": ["front", "left"], "topics.image": "/cam"}, False, "absolute and private"),
    ({"cameras": ["front", "left"], "topics.panoptic": "~/panoptic"}, False,
     "absolute and private names (~/panoptic)"),
    ({"cameras": ["front"], "topics.panoptic": "~/panoptic"}, False, ""),
    ({"cameras": ["front cam"]}, False, "not a valid namespace"),
    ({"no_such": 1}, False, "no_such is not a parameter"),
])
def test_check_change_accepts_or_gives_the_reason(changes, configured, reason):
    got = check_change(_defaults(), changes, configured)
    if reason:
        assert reason in got
    else:
        assert got == ""


def test_runtime_parameters_are_thresholds_tracker_and_output_settings():
    assert is_runtime("tracker.lam") and is_runtime("postprocess.mask_threshold")
    assert is_runtime("enable") and is_runtime("output_scale")
    assert not is_runtime("model") and not is_runtime("cameras") and not is_runtime("threads")


def test_a_bad_value_in_a_parameters_file_names_the_file_and_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("perception_node:\n  ros__parameters:\n    input_qos: lossy\n")
    with pytest.raises(ConfigError, match=r"mine.yaml: perception_node.input_qos: 'lossy'"):
        load_node_config(path)
    path.write_text("/**:\n  ros__parameters:\n    tracker:\n      gamma: 1.0\n")
    with pytest.raises(ConfigError, match=r"tracker: unknown key\(s\) gamma"):
        load_node_config(path)


def test_node_command_starts_straight_to_active_with_file_overrides_and_remaps():
    args = node_command("/p.yaml", {"model": "/m.pt", "cameras": ["a", "b"],
                                    "tracker.tau": 5}, {"image": "/cam/image_raw"},
                        name="perc", namespace="/robot")
    assert args[1:4] == ["-m", "vps_ros.ros.perception_node", "--ros-args"]
    assert args[4:6] == ["--params-file", "/p.yaml"]
    pairs = [args[i + 1] for i, a in enumerate(args) if a == "-p"]
    assert pairs == ['model:="/m.pt"', 'cameras:=["a", "b"]', "tracker.tau:=5", "autostart:=true"]
    assert json.loads(pairs[1].split(":=", 1)[1]) == ["a", "b"]
    remaps = [args[i + 1] for i, a in enumerate(args) if a == "-r"]
    assert remaps == ["image:=/cam/image_raw", "__node:=perc", "__ns:=/robot"]
