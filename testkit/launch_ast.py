"""Static reading of launch files (ROS 2 launch is not installable here): their syntax
tree and the calls in it, for the launch tests."""
import ast
from pathlib import Path


def launch_tree(path: Path) -> ast.Module:
    """The parsed launch file at ``path``."""
    return ast.parse(path.read_text(), filename=str(path))


def calls(tree: ast.Module, name: str) -> list[ast.Call]:
    """Every call of a function or method called ``name`` in ``tree``."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]
