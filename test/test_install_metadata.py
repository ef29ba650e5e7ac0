"""Install metadata, as pip reads it: ranges that admit a ROS 2 distribution's own Python
packages, the lock inside every range, lower bounds that `make test-lowest` installs, and
sources that stay within the Python versions setup.cfg admits."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import REPO

# Ubuntu 24.04's apt versions (ROS 2 Jazzy and Kilted), from the distribution's archive.
UBUNTU_2404 = {"numpy": "1.26.4", "scipy": "1.11.4", "opencv-python-headless": "4.6.0.66",
               "matplotlib": "3.6.3", "pyyaml": "6.0.1", "tqdm": "4.66.2"}
EXTRAS = {"hf", "engines", "ray", "train", "png"}
# Standard-library modules that Python 3.10 lacks, or that 3.12/3.13 removed.
NEWER_STDLIB = {"tomllib"}
REMOVED_STDLIB = {"distutils", "imp", "asynchat", "asyncore", "smtpd", "aifc", "audioop",
                  "cgi", "cgitb", "chunk", "crypt", "imghdr", "mailcap", "msilib", "nis",
                  "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau", "telnetlib",
                  "uu", "xdrlib", "lib2to3"}


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def metadata(tmp_path_factory):
    """The core metadata pip builds for `pip install .` (its --report, nothing installed)."""
    report = tmp_path_factory.mktemp("pip") / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps",
                    "--no-build-isolation", "--no-index", "--quiet", "--report", str(report),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    return json.loads(report.read_text())["install"][0]["metadata"]


def _requirements(metadata):
    return [Requirement(line) for line in metadata["requires_dist"]]


def _extra_of(req):
    match = re.search(r'extra == "([^"]+)"', str(req.marker or ""))
    return match[1] if match else None


def _lock():
    lines = (REPO / "requirements" / "lock.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if "==" in line and not line.startswith("#")]
    return {_canonical(name): Version(version) for name, version in pins}


def test_every_dependency_is_a_range_with_a_lower_bound(metadata):
    for req in _requirements(metadata):
        operators = {spec.operator for spec in req.specifier}
        assert ">=" in operators, f"{req}: needs a lower bound (the oldest version tested)"
        assert not operators & {"==", "==="}, f"{req}: exact pins belong in lock.txt"


def test_ubuntu_2404_packages_satisfy_the_core_dependencies(metadata):
    core = {_canonical(r.name): r for r in _requirements(metadata) if _extra_of(r) is None}
    for name, version in UBUNTU_2404.items():
        assert core[name].specifier.contains(version), f"{core[name]} rejects apt's {version}"


def test_the_lock_lies_inside_every_range(metadata):
    lock = _lock()
    for req in _requirements(metadata):
        assert req.specifier.contains(lock[_canonical(req.name)]), f"lock.txt is outside {req}"


def test_extras_are_declared_and_all_is_their_union(metadata):
    assert set(metadata["provides_extra"]) == EXTRAS | {"all"}
    by_extra = {}
    for req in _requirements(metadata):
        by_extra.setdefault(_extra_of(req), set()).add(str(Requirement(req.name + str(req.specifier))))
    assert set(by_extra) == EXTRAS | {"all", None}
    assert by_extra["all"] == set().union(*(by_extra[extra] for extra in EXTRAS))


def test_lowest_constraints_pin_lower_bounds_and_torch_as_locked(metadata):
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "lowest_constraints.py"),
                          str(REPO / "requirements")], check=True, capture_output=True,
                         text=True).stdout
    pins = dict(line.split("==") for line in out.split())
    pins = {_canonical(name): version for name, version in pins.items()}
    lock = _lock()
    for req in _requirements(metadata):
        name = _canonical(req.name)
        lower = next(spec.version for spec in req.specifier if spec.operator == ">=")
        want = lock[name].public if name == "torch" else lower
        assert Version(pins[name]) == Version(want), f"{name}: {pins[name]} != {want}"
    assert pins["numpy"] == UBUNTU_2404["numpy"]


def test_lowest_constraints_refuse_a_requirement_without_lower_bound(tmp_path):
    (tmp_path / "lock.txt").write_text("torch==2.13.0\n")
    (tmp_path / "core.txt").write_text("numpy>=1.26.4\n")
    (tmp_path / "extra-x.txt").write_text("# comment\nscipy<2\n")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "lowest_constraints.py"),
                             str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "extra-x.txt: scipy has no '>=' lower bound (<2)" in result.stderr


def _sources():
    files = list((REPO / "vps_ros").rglob("*.py")) + list((REPO / "launch").glob("*.py"))
    files += list((REPO / "test").rglob("*.py")) + list((REPO / "benchmarks").glob("*.py"))
    files += [p for p in (REPO / "scripts").iterdir()
              if p.is_file() and p.read_text(errors="ignore").startswith("#!/usr/bin/env python3")]
    return files


def test_python_requires_and_sources_fit_python_3_10_to_3_13(metadata):
    assert metadata["requires_python"] == ">=3.10"
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path), feature_version=(3, 10))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module.split(".")[0]]
            bad = set(names) & (NEWER_STDLIB | REMOVED_STDLIB)
            assert not bad, f"{path.relative_to(REPO)}:{node.lineno} imports {bad}"


def test_no_code_path_starts_openvino_telemetry():
    """OpenVINO sends telemetry only from model conversion (openvino.convert_model, ovc),
    which consents by default when no opt-out file exists; the runtime
    (Core.read_model/compile_model) sends nothing. So the code never converts."""
    for path in _sources():
        if path.is_relative_to(REPO / "test"):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Attribute):
                assert node.attr != "convert_model", f"{where}: openvino convert_model"
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                           else [node.module or ""])
                imported = [a.name for a in node.names]
                assert not any(m.startswith(("openvino.tools", "openvino_telemetry"))
                               for m in modules), f"{where}: imports {modules}"
                assert "convert_model" not in imported, f"{where}: imports convert_model"
