"""launch/replay_eval.launch.py, checked without ROS launch (not installable here): it
parses, starts the installed replay_eval program, and every option it passes on is an
option of ``vps-ros replay``; replay_eval itself runs the replay's command line."""
import ast
import re

from conftest import REPO
from testkit.launch_ast import calls, launch_tree
from vps_ros.cli import build_parser
from vps_ros.commands import replay as replay_cli

LAUNCH = REPO / "launch" / "replay_eval.launch.py"


def _tree() -> ast.Module:
    return launch_tree(LAUNCH)


def _calls(name: str) -> list[ast.Call]:
    return calls(_tree(), name)


def _replay_options() -> set[str]:
    parser = build_parser("replay")
    sub = next(a for a in parser._actions if a.dest == "command").choices["replay"]
    return {option for action in sub._actions for option in action.option_strings}


def test_launch_file_parses_and_defines_generate_launch_description():
    compile(LAUNCH.read_text(), str(LAUNCH), "exec")
    assert "generate_launch_description" in {n.name for n in _tree().body
                                             if isinstance(n, ast.FunctionDef)}


def test_every_option_the_launch_passes_is_a_replay_option():
    passed = {n.value for n in ast.walk(_tree()) if isinstance(n, ast.Constant)
              and isinstance(n.value, str) and n.value.startswith("--")}
    assert {"--mode", "--image-topic", "--gt-topic", "--out", "--lossless", "--rate",
            "--record", "--model", "--params"} <= passed
    assert passed <= _replay_options()


def test_every_declared_argument_is_read():
    declared = {call.args[0].value for call in _calls("DeclareLaunchArgument")}
    assert {"bag", "image_topic", "gt_topic", "out", "lossless"} <= declared
    source = LAUNCH.read_text()
    options = ast.literal_eval(next(n.value for n in _tree().body if isinstance(n, ast.Assign)
                                    and n.targets[0].id == "OPTIONS"))
    for name in declared:
        assert name in options or re.search(rf'value\("{name}"\)', source), name
    for call in _calls("DeclareLaunchArgument"):
        assert "description" in {k.arg for k in call.keywords}


def test_replay_eval_is_an_installed_executable_running_the_replay(tmp_path, capsys):
    nodes = [{k.arg: k.value for k in call.keywords} for call in _calls("Node")]
    assert [n["executable"].value for n in nodes] == ["replay_eval"]
    assert "scripts/replay_eval" in (REPO / "CMakeLists.txt").read_text()
    assert "from vps_ros.commands.replay import main" in (REPO / "scripts" / "replay_eval").read_text()
    assert replay_cli.main([str(tmp_path / "none"), "--image-topic", "/i", "--out",
                            str(tmp_path / "out"), "--ros-args", "-r", "__node:=x"]) == 2
    assert "bag not found" in capsys.readouterr().err
