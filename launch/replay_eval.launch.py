"""Replay a recorded drive through the vps_ros perception node and evaluate it (the live
mode of ``vps-ros replay``), with ROS 2 launch.

    ros2 launch vps_ros replay_eval.launch.py bag:=drive image_topic:=/camera/image_raw \
        gt_topic:=/gt/panoptic out:=report lossless:=true

The replay_eval program starts the perception node itself (with ``params_file``, in a
namespace of its own, on loopback discovery), publishes the bag's frames at the
recorded rate times ``rate`` (or, with ``lossless``, each once the node answered the
last), records ``panoptic`` and ``objects`` (into ``record`` when given), and writes
metrics.json, report.md and the pictures into ``out``. ``image_topic`` and ``gt_topic``
take several topics separated by commas (one camera each, paired by position; an
empty entry of ``gt_topic``: that camera has no ground truth).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "vps_ros"
# Launch argument -> replay_eval option, for the arguments passed on when not empty.
OPTIONS = {"out": "--out", "rate": "--rate", "record": "--record", "model": "--model",
           "params_file": "--params"}


def _replay(context):
    def value(name: str) -> str:
        return context.launch_configurations[name]

    arguments = [value("bag"), "--mode", "live"]
    truths = [t.strip() for t in value("gt_topic").split(",")]
    for k, topic in enumerate(value("image_topic").split(",")):
        arguments += ["--image-topic", topic.strip()]
        if k < len(truths) and truths[k]:
            arguments += ["--gt-topic", truths[k]]
    for name, option in OPTIONS.items():
        if value(name):
            arguments += [option, value(name)]
    if value("lossless").lower() in ("true", "1", "yes"):
        arguments.append("--lossless")
    return [Node(package=PACKAGE, executable="replay_eval", name="replay_eval",
                 arguments=arguments, output="screen", emulate_tty=True)]


def generate_launch_description():
    share = FindPackageShare(PACKAGE).find(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 to replay"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="camera image topic(s), comma-separated"),
        DeclareLaunchArgument("gt_topic", default_value="/gt/panoptic",
                              description="ground-truth topic(s), comma-separated, paired "
                                          "with image_topic; empty: no evaluation"),
        DeclareLaunchArgument("out", default_value="replay_report",
                              description="report folder"),
        DeclareLaunchArgument("lossless", default_value="true",
                              description="wait for each output before sending the next "
                                          "frame (the offline metrics, nothing dropped)"),
        DeclareLaunchArgument("rate", default_value="",
                              description="playback speed, 1 = as recorded; empty: 1"),
        DeclareLaunchArgument("record", default_value="",
                              description="record the node's outputs into this new bag"),
        DeclareLaunchArgument("model", default_value="",
                              description="segmenter checkpoint; empty: the params file's"),
        DeclareLaunchArgument("params_file",
                              default_value=f"{share}/config/perception.yaml",
                              description="ROS 2 parameters file of the perception node"),
        OpaqueFunction(function=_replay),
    ])
