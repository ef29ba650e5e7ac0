"""The node's DDS defaults for camera-sized images: the Fast DDS profile it takes when
nothing else decides the transports, and the input reliability of input_qos auto. The
end-to-end check (a 1080p camera and a best-effort viewer over DDS) is in
test_ros_node_dds.py."""
import xml.etree.ElementTree as ET

import pytest
from rclpy.qos import ReliabilityPolicy

from vps_ros.resources import config_path
from vps_ros.ros.dds import use_large_frame_profile
from vps_ros.ros.node_config import NodeConfig
from vps_ros.ros.qos import adapted_reliability, input_qos

pytestmark = pytest.mark.ros

RELIABLE, BEST_EFFORT = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT
NS = {"dds": "http://www.eprosima.com"}


def test_without_a_choice_of_the_user_the_package_profile_is_set(tmp_path):
    environ = {}
    line = use_large_frame_profile(environ, cwd=tmp_path)
    assert environ == {"FASTDDS_DEFAULT_PROFILES_FILE": str(config_path("fastdds.xml"))}
    assert "fastdds.xml" in line


@pytest.mark.parametrize("name", ["FASTDDS_DEFAULT_PROFILES_FILE",
                                  "FASTRTPS_DEFAULT_PROFILES_FILE",
                                  "FASTDDS_BUILTIN_TRANSPORTS",
                                  "FASTDDS_ENVIRONMENT_FILE"])
def test_a_profile_or_transports_of_the_user_are_kept(tmp_path, name):
    environ = {name: "/robot/dds.xml"}
    line = use_large_frame_profile(environ, cwd=tmp_path)
    assert environ == {name: "/robot/dds.xml"}
    assert f"{name}=/robot/dds.xml" in line


def test_a_default_profile_in_the_working_directory_is_kept(tmp_path):
    (tmp_path / "DEFAULT_FASTDDS_PROFILES.xml").write_text("<dds/>")
    environ = {}
    line = use_large_frame_profile(environ, cwd=tmp_path)
    assert environ == {} and "working directory" in line


def test_another_middleware_is_left_alone(tmp_path):
    environ = {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    line = use_large_frame_profile(environ, cwd=tmp_path)
    assert environ == {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    assert "rmw_cyclonedds_cpp" in line
    environ = {"RMW_IMPLEMENTATION": "rmw_fastrtps_dynamic_cpp"}
    use_large_frame_profile(environ, cwd=tmp_path)
    assert "FASTDDS_DEFAULT_PROFILES_FILE" in environ


def test_the_profile_segment_holds_every_output_of_a_1080p_frame():
    """panoptic (32SC1), panoptic_color and overlay (bgr8) of one 1920x1080 frame, as the
    node publishes them when all are subscribed; the default transports stay."""
    root = ET.parse(config_path("fastdds.xml")).getroot()
    descriptors = {d.findtext("dds:transport_id", namespaces=NS): d
                   for d in root.iterfind(".//dds:transport_descriptor", NS)}
    kinds = sorted(d.findtext("dds:type", namespaces=NS) for d in descriptors.values())
    assert kinds == ["SHM", "UDPv4"]
    shm = next(d for d in descriptors.values() if d.findtext("dds:type", namespaces=NS) == "SHM")
    outputs = 1920 * 1080 * (4 + 3 + 3)
    assert int(shm.findtext("dds:segment_size", namespaces=NS)) > outputs
    participant = root.find(".//dds:participant", NS)
    assert participant.get("is_default_profile") == "true"
    used = [t.text for t in participant.iterfind("dds:rtps/dds:userTransports/dds:transport_id",
                                                 NS)]
    assert sorted(used) == sorted(descriptors)
    assert participant.findtext("dds:rtps/dds:useBuiltinTransports", namespaces=NS) == "false"


@pytest.mark.parametrize("offered, wanted", [
    ([], BEST_EFFORT),                       # no camera yet: best effort matches any
    ([RELIABLE], RELIABLE),
    ([BEST_EFFORT], BEST_EFFORT),
    ([RELIABLE, RELIABLE], RELIABLE),
    ([RELIABLE, BEST_EFFORT], BEST_EFFORT),  # reliable would not match the second
])
def test_auto_input_reliability_follows_the_publishers(offered, wanted):
    assert adapted_reliability(offered) == wanted


def test_input_qos_profiles():
    auto = input_qos(NodeConfig(), RELIABLE)
    assert (auto.reliability, auto.depth) == (RELIABLE, 5)
    assert input_qos(NodeConfig(input_queue_size=8), BEST_EFFORT).depth == 8
    assert input_qos(NodeConfig(input_qos="sensor_data"), RELIABLE).reliability == BEST_EFFORT
    lossless = input_qos(NodeConfig(input_qos="reliable", input_queue_size=40))
    assert (lossless.reliability, lossless.depth) == (RELIABLE, 40)
