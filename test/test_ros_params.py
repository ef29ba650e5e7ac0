"""ROS parameter descriptors come from the config fields: type, description, range,
choices; values of the wrong type in a parameters file are named at start-up."""
import pytest
from rcl_interfaces.msg import ParameterType

from vps_ros.ros.node_config import node_parameters
from vps_ros.ros.params import descriptor

pytestmark = pytest.mark.ros

LEAVES = {leaf.name: leaf for leaf in node_parameters()}


def test_descriptors_carry_type_description_and_when_a_change_applies():
    d = descriptor(LEAVES["tracker.lam"])
    assert d.name == "tracker.lam" and d.type == ParameterType.PARAMETER_DOUBLE
    assert "lambda" in d.description and d.description.endswith(
        "(changes apply from the next frame)")
    assert descriptor(LEAVES["model"]).description.endswith("(read at configure)")
    assert descriptor(LEAVES["cameras"]).type == ParameterType.PARAMETER_STRING_ARRAY
    assert descriptor(LEAVES["enable"]).type == ParameterType.PARAMETER_BOOL
    assert descriptor(LEAVES["tracker.tau"]).type == ParameterType.PARAMETER_INTEGER


def test_ranges_and_choices_come_from_the_field_declarations():
    alpha = descriptor(LEAVES["tracker.alpha"]).floating_point_range[0]
    assert (alpha.from_value, alpha.to_value) == (0.0, 1.0)
    tau = descriptor(LEAVES["tracker.tau"]).integer_range[0]
    assert (tau.from_value, tau.to_value, tau.step) == (0, 100000, 1)
    assert descriptor(LEAVES["tracker.temperature"]).additional_constraints == "must be > 0.0"
    assert descriptor(LEAVES["input_qos"]).additional_constraints == \
        "one of: auto, sensor_data, reliable"
    assert descriptor(LEAVES["tracker.mode"]).additional_constraints.startswith("one of: hila_mb")
    assert not descriptor(LEAVES["model"]).floating_point_range
    assert not descriptor(LEAVES["model"]).integer_range


def test_a_misspelled_parameter_is_named_with_the_closest_real_one(ros_env, monkeypatch, capfd):
    """rclpy ignores parameters a node does not declare; the node says so, and goes on."""
    import rclpy
    from rclpy.parameter import Parameter
    from vps_ros.ros.perception_node import PerceptionNode
    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.setenv(key, ros_env[key])
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = PerceptionNode(context=context, parameter_overrides=[
            Parameter("tracker.lamda", value=0.5), Parameter("tracker.tau", value=12),
            Parameter("use_sim_time", value=False), Parameter("qos_overrides./image.depth",
                                                              value=3)])
        assert node.get_parameter("tracker.tau").value == 12
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    err = capfd.readouterr().err
    assert "unknown parameter tracker.lamda (did you mean tracker.lam?): ignored" in err
    assert "use_sim_time" not in err and "qos_overrides" not in err


def test_the_node_refuses_a_misspelled_section_of_its_parameters_file(tmp_path, ros_env):
    """rcl applies only the sections naming the node: ``perception_nodee`` would start a
    node at its defaults without a word. A real node process exits 2 with one line."""
    import subprocess
    from vps_ros.ros.node_config import node_command
    path = tmp_path / "mine.yaml"
    path.write_text("/**:\n  ros__parameters:\n    threads: 1\n"
                    "perception_nodee:\n  ros__parameters:\n    model: /robot/model.pt\n")
    done = subprocess.run(node_command(path), env=ros_env, capture_output=True, text=True,
                          timeout=120)
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 2, lines
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert f"{path}: section perception_nodee (did you mean perception_node?) names no " \
        "node" in lines[0]
