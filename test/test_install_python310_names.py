"""Python 3.10 support beyond grammar: no module or module-level name of the standard
library that 3.10 lacks (``typing.Self``, ``hashlib.file_digest``, ``datetime.UTC``,
``tomllib``, ...). No 3.10 interpreter is installable here (Ubuntu 24.04 ships 3.12;
PyPI has none), so the names come from typeshed's stdlib stubs, written to
test/fixtures/stdlib_after_3_10.json by scripts/stdlib_after_3_10.py."""
import ast
import json
from pathlib import Path

from conftest import REPO

NEWER = json.loads((REPO / "test" / "fixtures" / "stdlib_after_3_10.json").read_text())
SOURCES = ("vps_ros", "testkit", "test", "scripts", "benchmarks", "launch")


def newer_names_used(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, name, first version) of each standard-library use that 3.10 lacks:
    ``import m``, ``from m import n`` and ``m.n`` with ``m`` imported as a module."""
    modules, names = NEWER["modules"], NEWER["names"]
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    found.append((node.lineno, alias.name, modules[alias.name]))
                aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module in modules:
                found.append((node.lineno, node.module, modules[node.module]))
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in modules:
                    found.append((node.lineno, full, modules[full]))
                elif alias.name in names.get(node.module, {}):
                    found.append((node.lineno, full, names[node.module][alias.name]))
                else:
                    aliases[alias.asname or alias.name] = full
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            module = aliases.get(ast.unparse(node.value), ast.unparse(node.value))
            if node.attr in names.get(module, {}):
                found.append((node.lineno, f"{module}.{node.attr}", names[module][node.attr]))
    return sorted(set(found))


def test_the_data_holds_what_3_11_and_later_added():
    names, modules = NEWER["names"], NEWER["modules"]
    assert (names["typing"]["Self"], names["hashlib"]["file_digest"], names["datetime"]["UTC"],
            modules["tomllib"]) == ("3.11", "3.11", "3.11", "3.11")
    assert "ParamSpec" not in names["typing"] and "TypeAlias" not in names["typing"]  # 3.10


def test_the_check_finds_each_kind_of_use():
    code = ("import hashlib, tomllib\nfrom typing import Self\nimport datetime as dt\n"
            "hashlib.file_digest\ndt.UTC\nfrom enum import StrEnum as S\nhashlib.sha256\n")
    assert [(line, name) for line, name, _ in newer_names_used(ast.parse(code))] == [
        (1, "tomllib"), (2, "typing.Self"), (4, "hashlib.file_digest"), (5, "datetime.UTC"),
        (6, "enum.StrEnum")]


def test_no_source_uses_what_python_3_10_lacks():
    used = [f"{path.relative_to(REPO)}:{line}: {name} (Python {version}+)"
            for folder in SOURCES for path in sorted((REPO / folder).rglob("*.py"))
            for line, name, version in newer_names_used(ast.parse(path.read_text()))]
    assert used == []
