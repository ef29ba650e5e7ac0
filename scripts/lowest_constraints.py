#!/usr/bin/env python3
"""Print pip constraints that pin every dependency of vps_ros to its lower bound.

`make test-lowest` installs with these, so the lower bounds in requirements/core.txt and
requirements/extra-*.txt are versions the fast suite has run with. Every requirement
there must have a `>=` lower bound; a package named in LOCKED is pinned to its
lock.txt version instead, for the reason given.

Usage: lowest_constraints.py REQUIREMENTS_DIR  (writes the constraints to stdout)
"""
import re
import sys
from pathlib import Path

LOCKED = {
    "torch": "only the locked CPU build is on this machine's disk; older torch releases "
             "on the registry are multi-GB CUDA builds",
}
_REQ = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<spec>[^;#]*)")
_LOWER = re.compile(r">=\s*(?P<version>[^,\s]+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(path: Path) -> list[tuple[str, str]]:
    reqs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _REQ.match(line)
        if not match:
            raise SystemExit(f"{path}:{number}: cannot read requirement {line!r}")
        reqs.append((match["name"], match["spec"].strip()))
    return reqs


def lowest_constraints(requirements: Path) -> list[str]:
    lock = {_canonical(name): spec for name, spec in _requirements(requirements / "lock.txt")}
    lines = []
    for path in [requirements / "core.txt", *sorted(requirements.glob("extra-*.txt"))]:
        for name, spec in _requirements(path):
            if _canonical(name) in LOCKED:
                lines.append(f"{name}{lock[_canonical(name)]}")
                continue
            lower = _LOWER.search(spec)
            if not lower:
                raise SystemExit(f"{path}: {name} has no '>=' lower bound ({spec or 'none'})")
            lines.append(f"{name}=={lower['version']}")
    return lines


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    print("\n".join(lowest_constraints(Path(sys.argv[1]))))
