"""The launch file, checked without ROS launch (not installable here): it parses, the
executables it starts are installed by this package, the parameters file it passes
holds exactly the node's parameters, and the rviz config shows the node's images."""
import ast
import configparser
import re

import yaml

from conftest import REPO
from testkit.launch_ast import calls, launch_tree
from vps_ros.ros.node_config import NodeConfig, node_parameters

LAUNCH = REPO / "launch" / "perception.launch.py"


def _tree() -> ast.Module:
    return launch_tree(LAUNCH)


def _calls(name: str) -> list[ast.Call]:
    return calls(_tree(), name)


def _keywords(call: ast.Call) -> dict[str, ast.AST]:
    return {k.arg: k.value for k in call.keywords}


def _constants() -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments of the launch file."""
    return {t.id: n.value.value for n in _tree().body if isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Constant) for t in n.targets if isinstance(t, ast.Name)}


def _strings(node: ast.AST) -> list[str]:
    """The string constants in ``node``, module-level names replaced by their value."""
    constants = _constants()
    return [n.value if isinstance(n, ast.Constant) else constants[n.id]
            for n in ast.walk(node) if (isinstance(n, ast.Constant) and isinstance(n.value, str))
            or (isinstance(n, ast.Name) and n.id in constants)]


def _loop_arguments() -> set[str]:
    """Names a ``for name in (...)`` loop reads with ``LaunchConfiguration(name)``."""
    names = set()
    for loop in (n for n in ast.walk(_tree()) if isinstance(n, ast.For)):
        if any(isinstance(c, ast.Call) and getattr(c.func, "id", None) == "LaunchConfiguration"
               for c in ast.walk(loop)):
            names |= set(_strings(loop.iter))
    return names


def test_launch_file_defines_generate_launch_description():
    functions = {n.name for n in _tree().body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    compile(LAUNCH.read_text(), str(LAUNCH), "exec")


def test_launch_arguments_cover_what_users_set():
    declared = [_strings(call.args[0])[0] for call in _calls("DeclareLaunchArgument")]
    assert {"image", "params_file", "model", "device", "namespace", "use_rviz"} <= set(declared)
    assert len(declared) == len(set(declared))
    used = {s for call in _calls("LaunchConfiguration") for s in _strings(call)}
    used |= _loop_arguments()
    assert set(declared) <= used, "every declared argument is used"
    assert used <= set(declared), "every used argument is declared"
    for call in _calls("DeclareLaunchArgument"):
        assert "description" in _keywords(call)


def test_node_executables_exist_among_the_package_entry_points():
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    console = parser["options.entry_points"]["console_scripts"]
    entry_points = {line.split("=")[0].strip() for line in console.strip().splitlines()}
    installed = set(re.findall(r"scripts/(\w+)", (REPO / "CMakeLists.txt").read_text()))
    nodes = [_keywords(call) for call in _calls("Node")]
    ours = [k for k in nodes if _strings(k["package"]) == ["vps_ros"]]
    assert [_strings(k["executable"]) for k in ours] == [["perception_node"]]
    assert "perception_node" in entry_points and "perception_node" in installed
    assert (REPO / "scripts" / "perception_node").is_file()
    rviz = [k for k in nodes if _strings(k["package"]) == ["rviz2"]]
    assert len(rviz) == 1 and "condition" in rviz[0]


def test_launch_passes_the_packages_params_file_and_rviz_config():
    joins = [_strings(call) for call in _calls("PathJoinSubstitution")]
    assert ["config", "perception.yaml"] in joins and ["config", "vps_ros.rviz"] in joins
    package = [_strings(call) for call in _calls("FindPackageShare")]
    assert package == [["vps_ros"]]
    assert (REPO / "config" / "perception.yaml").is_file()
    assert (REPO / "config" / "vps_ros.rviz").is_file()
    assert re.search(r"install\(DIRECTORY launch config models", (REPO / "CMakeLists.txt")
                     .read_text()), "launch/ and config/ are installed to share/vps_ros"


def test_params_file_keys_are_the_nodes_declared_parameters():
    data = yaml.safe_load((REPO / "config" / "perception.yaml").read_text())
    keys = set()

    def walk(mapping, prefix=""):
        for key, value in mapping.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                keys.add(f"{prefix}{key}")
    for section in data.values():
        walk(section["ros__parameters"])
    declared = {leaf.name for leaf in node_parameters()}
    assert keys == declared
    assert NodeConfig().autostart, "launched nodes go straight to active"


def test_the_launch_overrides_only_parameters_the_node_declares():
    overrides = [n for n in ast.walk(_tree()) if isinstance(n, ast.Dict)]
    keys = {s for d in overrides for k in d.keys if k is not None for s in _strings(k)}
    keys |= _loop_arguments()
    assert keys <= {leaf.name for leaf in node_parameters()}
    assert {"autostart", "model", "device"} <= keys


def test_rviz_config_shows_the_overlay_and_panoptic_colour_images():
    rviz = yaml.safe_load((REPO / "config" / "vps_ros.rviz").read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    images = {d["Topic"]["Value"] for d in displays
              if d["Class"] == "rviz_default_plugins/Image" and d["Enabled"]}
    topics = NodeConfig().topics
    assert images == {topics.overlay, topics.panoptic_color}


def test_rviz_subscribes_to_the_images_reliable_as_the_node_publishes_them():
    """Best effort would lose whole camera-sized images over a network (docs/cameras.md)."""
    rviz = yaml.safe_load((REPO / "config" / "vps_ros.rviz").read_text())
    displays = [d for d in rviz["Visualization Manager"]["Displays"]
                if d["Class"] == "rviz_default_plugins/Image"]
    assert displays and all(d["Topic"]["Reliability Policy"] == "Reliable" for d in displays)
