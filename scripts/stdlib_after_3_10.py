"""Write test/fixtures/stdlib_after_3_10.json: the standard-library modules and
module-level names that Python 3.10 lacks, read from a typeshed checkout's stdlib stubs
(VERSIONS gives each module's first version; names defined only under
``if sys.version_info >= (3, N)`` with N > 10 are newer). The data is committed, so the
check of our sources does not depend on the interpreter that runs the tests.

    python scripts/stdlib_after_3_10.py PATH/TO/typeshed [typeshed commit]
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

TARGET = (3, 10)
OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "stdlib_after_3_10.json"


def _version_test(node: ast.expr) -> tuple[str, tuple[int, int]] | None:
    """('>=' or '<', (3, N)) for ``sys.version_info >= (3, N)`` and the like."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1
            and ast.unparse(node.left) == "sys.version_info"
            and isinstance(node.comparators[0], ast.Tuple)):
        return None
    version = tuple(int(e.value) for e in node.comparators[0].elts[:2])
    op = {ast.GtE: ">=", ast.Lt: "<"}.get(type(node.ops[0]))
    return (op, version) if op else None


def _holds(node: ast.expr) -> bool | None:
    """Whether the condition holds on Python 3.10 (None: not a version test)."""
    test = _version_test(node)
    if test is None:
        return None
    op, version = test
    return TARGET >= version if op == ">=" else TARGET < version


def _defined(body: list[ast.stmt], possible: bool, since: tuple[int, int] | None,
             found: dict[str, set]) -> None:
    """Record each name defined in ``body``: in found['old'] when 3.10 can define it,
    else in found[version] (the version test that guards it)."""
    for node in body:
        if isinstance(node, ast.If):
            holds = _holds(node.test)
            test = _version_test(node.test)
            newer = test[1] if test and test[0] == ">=" and holds is False else since
            _defined(node.body, possible and holds is not False, newer, found)
            other = test[1] if test and test[0] == "<" and holds is True else since
            _defined(node.orelse, possible and holds is not True, other, found)
            continue
        names = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        elif isinstance(node, ast.ImportFrom):
            names = [a.asname or a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.asname or a.name.split(".")[0] for a in node.names]
        for name in names:
            if possible:
                found.setdefault("old", set()).add(name)
            elif since:
                found.setdefault(f"{since[0]}.{since[1]}", set()).add(name)


def main(typeshed: Path, commit: str = "") -> None:
    stdlib = typeshed / "stdlib"
    modules = {}
    for line in (stdlib / "VERSIONS").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            module, _, span = line.partition(":")
            first = tuple(int(v) for v in span.strip().split("-")[0].split("."))
            if first > TARGET:
                modules[module.strip()] = f"{first[0]}.{first[1]}"
    names = {}
    for stub in sorted(stdlib.rglob("*.pyi")):
        parts = stub.relative_to(stdlib).with_suffix("").parts
        if parts[0].startswith("@") or parts[0] == "_typeshed":
            continue
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found: dict[str, set] = {}
        _defined(ast.parse(stub.read_text()).body, True, None, found)
        old = found.pop("old", set())
        newer = {name: version for version, group in sorted(found.items())
                 for name in sorted(group - old)}
        if newer:
            names[module] = dict(sorted(newer.items()))
    OUT.write_text(json.dumps({"source": f"typeshed stdlib stubs {commit}".strip(),
                               "python": "3.10", "modules": modules, "names": names},
                              indent=1, sort_keys=True) + "\n")
    print(f"{OUT}: {len(modules)} modules, {sum(map(len, names.values()))} names")


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:3])
