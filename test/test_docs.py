"""The user documentation holds together: every relative link of README.md, docs/*.md,
CHANGELOG.md and the model card reaches a file (and, with ``#anchor``, a heading of it),
and every command in a fenced ``bash``/``sh`` block of README.md names something that
exists here: a ``vps-ros`` subcommand of the CLI's parser (with options that parser
accepts), a Makefile target, a script or module of this repository, an executable on
PATH, or, for the ROS 2 quick start, ``ros2 launch``/``ros2 run``/``colcon`` naming this
package's launch files, executables and package name. The changelog's newest version is
the package's."""
import ast
import configparser
import contextlib
import importlib.util
import io
import re
import shlex
import shutil
from pathlib import Path

import pytest

from conftest import REPO
from testkit.launch_ast import calls, launch_tree
from vps_ros.cli import COMMANDS, build_parser

README = REPO / "README.md"
DOCUMENTS = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "CHANGELOG.md",
             REPO / "models" / "MODEL_CARD.md"]
SHELL_BUILTINS = {"cd", "source", ".", "export", "echo", "set", "unset"}
# Tools that come with a ROS 2 distribution, not with this checkout's environment; a
# command using them is checked against this package instead (see _check_ros_tool).
ROS_TOOLS = {"ros2", "rosdep", "colcon"}
FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _blocks_and_prose(text: str) -> tuple[list[tuple[str, str, int]], list[tuple[int, str]]]:
    """Fenced blocks as (info, body, first line number), and the lines outside them."""
    blocks, prose, fence, info, body, start = [], [], None, "", [], 0
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line.strip())
        if fence is None and match:
            fence, info, body, start = match.group(1), match.group(2).lower(), [], number + 1
        elif fence is not None and line.strip().startswith(fence):
            blocks.append((info, "\n".join(body), start))
            fence = None
        elif fence is not None:
            body.append(line)
        else:
            prose.append((number, line))
    assert fence is None, "a fenced block is not closed"
    return blocks, prose


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: link text kept, formatting and
    punctuation dropped, lower case, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    _, prose = _blocks_and_prose(path.read_text())
    anchors, seen = set(), {}
    for _, line in prose:
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = github_anchor(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            anchors.add(base if count == 0 else f"{base}-{count}")
    return anchors


def broken_links(path: Path) -> list[str]:
    """Every relative link of ``path`` whose file or heading is missing, one line each."""
    _, prose = _blocks_and_prose(path.read_text())
    problems = []
    for number, line in prose:
        line = re.sub(r"`[^`]*`", "", line)
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue
            file_part, _, anchor = target.partition("#")
            where = f"{path.relative_to(REPO)}:{number}: link {target!r}"
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                problems.append(f"{where}: {resolved.relative_to(REPO)} does not exist")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                problems.append(f"{where}: {resolved.relative_to(REPO)} has no heading "
                                f"with anchor #{anchor}")
    return problems


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path):
    problems = broken_links(path)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_docs_folder_holds_the_pages_and_the_picture_the_readme_shows():
    assert len(list((REPO / "docs").glob("*.md"))) >= 7
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README.read_text())
    assert pictures and all((REPO / p).is_file() for p in pictures)
    assert all((REPO / p).stat().st_size < 400_000 for p in pictures), "keep pictures small"


def shell_commands(text: str) -> list[tuple[int, str]]:
    """The simple commands of the ``bash``/``sh`` blocks of ``text``: continuation lines
    joined, comments dropped, split at ``&&``, ``||``, ``;`` and ``|``."""
    blocks, _ = _blocks_and_prose(text)
    commands = []
    for info, body, start in blocks:
        if info not in ("bash", "sh", "shell"):
            continue
        logical, first = "", None
        for offset, line in enumerate(body.splitlines()):
            first = start + offset if first is None else first
            if line.rstrip().endswith("\\"):
                logical += line.rstrip()[:-1] + " "
                continue
            logical += line
            words = " ".join(shlex.split(logical, comments=True))
            for part in re.split(r"\s(?:&&|\|\||;|\|)\s|;$", f" {words} "):
                if part.strip():
                    commands.append((first, part.strip()))
            logical, first = "", None
    return commands


def _makefile_targets() -> set[str]:
    return set(re.findall(r"^([\w.-]+):", (REPO / "Makefile").read_text(), re.MULTILINE))


def _package_executables() -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    console = parser["options.entry_points"]["console_scripts"]
    entry_points = {line.split("=")[0].strip() for line in console.strip().splitlines()}
    installed = set(re.findall(r"scripts/(\w+)", (REPO / "CMakeLists.txt").read_text()))
    return entry_points | installed


def _launch_arguments(path: Path) -> set[str]:
    return {call.args[0].value for call in calls(launch_tree(path), "DeclareLaunchArgument")
            if isinstance(call.args[0], ast.Constant)}


def _package_name() -> str:
    return re.search(r"<name>(\w+)</name>", (REPO / "package.xml").read_text()).group(1)


def _check_vps_ros(args: list[str]) -> str | None:
    subcommand = next((a for a in args if not a.startswith("-")), None)
    if subcommand not in COMMANDS:
        return f"vps-ros has no subcommand {subcommand!r} (it has {sorted(COMMANDS)})"
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            build_parser(subcommand).parse_args(args)
    except SystemExit:
        return (f"vps-ros {subcommand} does not accept these arguments: "
                f"{errors.getvalue().strip().splitlines()[-1]}")
    return None


def _check_ros_tool(tool: str, args: list[str]) -> str | None:
    package = _package_name()
    if tool == "ros2" and args[:1] == ["launch"]:
        if args[1:2] != [package]:
            return f"ros2 launch names package {args[1:2]}, not {package}"
        launch = REPO / "launch" / args[2]
        if not launch.is_file():
            return f"launch file {launch.relative_to(REPO)} does not exist"
        unknown = {a.split(":=")[0] for a in args[3:] if ":=" in a} - _launch_arguments(launch)
        return f"{args[2]} declares no argument {sorted(unknown)}" if unknown else None
    if tool == "ros2" and args[:1] == ["run"]:
        if args[1:2] != [package] or args[2] not in _package_executables():
            return f"ros2 run {args[1:3]}: not an executable of {package}"
        return None
    if tool == "colcon" and "--packages-select" in args:
        selected = args[args.index("--packages-select") + 1]
        return None if selected == package else f"colcon selects {selected}, not {package}"
    if tool in ("colcon", "rosdep") and args[:1] in (["build"], ["install"]):
        return None
    return f"{tool} {' '.join(args[:1])}: not a use of the ROS 2 tools this test knows"


def _check_path(word: str) -> str | None:
    return None if (REPO / word).exists() else f"{word} is not a file of this repository"


def command_problem(command: str) -> str | None:
    """Why ``command`` names nothing that exists, or None."""
    words = shlex.split(command)
    while words and re.match(r"^\w+=", words[0]):
        words = words[1:]
    if words[:1] == ["sudo"]:
        words = words[1:]
    if not words:
        return None
    tool, args = words[0], words[1:]
    if tool == "vps-ros":
        return _check_vps_ros(args)
    if tool == "make":
        targets = [a for a in args if not a.startswith("-") and "=" not in a]
        missing = set(targets) - _makefile_targets()
        return f"the Makefile has no target {sorted(missing)}" if missing else None
    if tool in ROS_TOOLS and (tool != "colcon" or "--packages-select" in args):
        return _check_ros_tool(tool, args)
    if tool in ("python", "python3") and args[:1] == ["-m"]:
        top = args[1].split(".")[0]
        found = importlib.util.find_spec(top) and importlib.util.find_spec(args[1])
        return None if found else f"python -m {args[1]}: no such module"
    if tool in ("python", "python3", "bash", "sh") and args and not args[0].startswith("-"):
        return _check_path(args[0])
    if "/" in tool:
        return _check_path(tool)
    if tool in SHELL_BUILTINS or shutil.which(tool):
        return None
    return f"{tool} is neither on PATH nor a shell builtin"


def test_readme_commands_name_what_exists():
    commands = shell_commands(README.read_text())
    assert len(commands) >= 8, commands
    problems = [f"README.md:{line}: {command!r}: {why}" for line, command in commands
                if (why := command_problem(command))]
    assert not problems, "\n".join(problems)


def test_the_command_check_rejects_what_does_not_exist():
    assert command_problem("vps-ros replay BAG --image-topic /a --out R") is None
    assert "no subcommand" in command_problem("vps-ros teleport out/")
    assert "does not accept" in command_problem("vps-ros synth out/ --no-such-option")
    assert "no target" in command_problem("make deploy")
    assert "not a file" in command_problem("bash scripts/no_such.sh")
    assert "does not exist" in command_problem("ros2 launch vps_ros nothing.launch.py")
    assert "declares no argument" in command_problem(
        "ros2 launch vps_ros perception.launch.py camera:=/x")
    assert "neither on PATH" in command_problem("definitely-not-a-tool-here --help")
    assert shell_commands("```bash\nmake demo && cd x \\\n  && make test  # run\n```\n") == [
        (2, "make demo"), (2, "cd x"), (2, "make test")]


def test_the_link_check_finds_missing_files_and_headings(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    (tmp_path / "a.md").write_text("# Top `x` part\n\n## Two: B\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](a.md#top-x-part) [ok2](a.md#two-b) [web](https://x.org/y)\n"
                    "`[code](gone.md)` [gone](gone.md) [bad](a.md#three)\n"
                    "```\n[in a block](gone2.md)\n```\n")
    problems = broken_links(page)
    assert len(problems) == 2
    assert "page.md:2" in problems[0] and "gone.md does not exist" in problems[0]
    assert "no heading with anchor #three" in problems[1]


def test_the_changelog_names_the_package_version():
    package_xml = re.search(r"<version>([^<]+)</version>", (REPO / "package.xml").read_text())
    init = re.search(r'__version__ = "([^"]+)"', (REPO / "vps_ros" / "version.py").read_text())
    newest = re.search(r"^## \[([^\]]+)\]", (REPO / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert package_xml.group(1) == init.group(1) == newest.group(1)
