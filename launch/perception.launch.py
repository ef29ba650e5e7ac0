"""Start the vps_ros perception node, straight to active, and rviz2 when asked.

    ros2 launch vps_ros perception.launch.py image:=/camera/image_raw use_rviz:=true

Every node parameter comes from ``params_file`` (config/perception.yaml by default);
the ``model`` and ``device`` arguments override it when given. ``image`` remaps the
input topic (raw, and <image>/compressed for input_transport: compressed). Outputs
are ``panoptic``, ``panoptic_color``, ``overlay`` and ``objects`` in ``namespace``.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "vps_ros"


def _perception_node(context):
    overrides = {"autostart": True}
    for name in ("model", "device"):
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    image = LaunchConfiguration("image").perform(context)
    return [Node(
        package=PACKAGE,
        executable="perception_node",
        name="perception_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), overrides],
        remappings=[("image", image), ("image/compressed", f"{image}/compressed")],
        output="screen",
        emulate_tty=True,
    )]


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument(
            "image", default_value="image",
            description="camera image topic (sensor_msgs/Image; <image>/compressed for "
                        "input_transport: compressed)"),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([share, "config", "perception.yaml"]),
            description="ROS 2 parameters file of the node"),
        DeclareLaunchArgument(
            "model", default_value="",
            description="segmenter: a checkpoint (.pt), a transformers model folder or "
                        "hf:ORG/NAME[@REVISION] (docs/pretrained.md); empty: the params "
                        "file's (models/default.pt unless it names one)"),
        DeclareLaunchArgument(
            "device", default_value="",
            description="torch device (cpu, cuda, cuda:N); empty: the params file's"),
        DeclareLaunchArgument(
            "namespace", default_value="",
            description="namespace of the node and of its topics"),
        DeclareLaunchArgument(
            "use_rviz", default_value="false",
            description="also start rviz2 showing the overlay and panoptic images"),
        DeclareLaunchArgument(
            "rviz_config",
            default_value=PathJoinSubstitution([share, "config", "vps_ros.rviz"]),
            description="rviz2 configuration"),
        OpaqueFunction(function=_perception_node),
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            namespace=LaunchConfiguration("namespace"),
            arguments=["-d", LaunchConfiguration("rviz_config")],
            condition=IfCondition(LaunchConfiguration("use_rviz")),
        ),
    ])
