"""The layout's rules, checked on the import graph of every module (lazy imports and
imports under TYPE_CHECKING included): no cycle, the core never imports ROS, commands
are imported by nothing below them, and the package works with the empty
``vps_ros/__init__.py`` that a colcon build of the messages may install over ours."""
import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "vps_ros"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every module this one imports, as absolute names (``from X import Y`` counts as
    X, and as X.Y where that is a module)."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[:len(base) - node.level + 1]
                module = ".".join(parent + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(name, path) if m in modules and m != name}
            for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None
    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    assert _cycle(_graph()) is None


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_core_never_imports_ros():
    core = ("vps_ros.model", "vps_ros.tracking", "vps_ros.metrics", "vps_ros.data",
            "vps_ros.pipeline", "vps_ros.replay", "vps_ros.train", "vps_ros.types")
    for name, path in _modules().items():
        if name.startswith(core):
            ros = {m for m in _imports(name, path)
                   if m.split(".")[0] in ("rclpy", "rosidl_runtime_py") or m.startswith("vps_ros.ros")}
            assert not ros, f"{name} imports {ros}"


def test_nothing_below_the_commands_imports_them():
    for name, targets in _graph().items():
        if name.startswith(("vps_ros.commands", "vps_ros.cli", "vps_ros.train.__main__")):
            continue
        assert not {t for t in targets if t.startswith("vps_ros.commands")}, name


def test_the_package_works_under_the_init_a_message_build_installs(tmp_path):
    """colcon installs the sources and the generated message package into one folder;
    the generated (empty) ``__init__.py`` may be the one that stays. Loading the shipped
    model on an engine then still works (it read the version from ``__init__``)."""
    shutil.copytree(PACKAGE, tmp_path / "vps_ros",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "vps_ros" / "__init__.py").write_text("")
    for shared in ("config", "models", "package.xml"):
        (tmp_path / shared).symlink_to(REPO / shared)
    # the checkout's editable install would win over PYTHONPATH: leave it out
    code = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path "
            "if 'editable' not in repr(f).lower()]\n"
            "import vps_ros; assert vps_ros.__file__.startswith(sys.argv[1]), vps_ros.__file__\n"
            "from vps_ros.pipeline import PipelineConfig, load_segmenter\n"
            "s = load_segmenter(PipelineConfig(backend='openvino'))\n"
            "print(s.backend, s.fallback or 'ok')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), VPS_ROS_CACHE=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["openvino", "ok"]
