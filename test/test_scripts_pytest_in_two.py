"""scripts/pytest_in_two.sh: CI is green only if both halves ran tests and passed."""
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

SCRIPT = REPO / "scripts" / "pytest_in_two.sh"


def _run(tmp_path: Path, files: dict) -> int:
    """The script in a throwaway tree holding only `files` (name -> test source)."""
    (tmp_path / "test").mkdir()
    for name, text in files.items():
        (tmp_path / "test" / name).write_text(text)
    bin_dir = Path(sys.executable).parent  # `python` resolves to this interpreter
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", str(SCRIPT), "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path, env=env, capture_output=True, timeout=120).returncode


def test_both_halves_passing_is_success(tmp_path):
    ok = "def test_ok():\n    assert True\n"
    assert _run(tmp_path, {"test_a.py": ok, "test_train_a.py": ok}) == 0


def test_a_half_that_collects_no_test_fails(tmp_path):
    ok = "def test_ok():\n    assert True\n"
    assert _run(tmp_path, {"test_a.py": ok, "test_train_a.py": "X = 1\n"}) == 5


def test_a_training_glob_that_matches_nothing_fails(tmp_path):
    assert _run(tmp_path, {"test_a.py": "def test_ok():\n    assert True\n"}) != 0


def test_a_failing_half_fails(tmp_path):
    bad = "def test_bad():\n    assert False\n"
    assert _run(tmp_path, {"test_a.py": bad,
                           "test_train_a.py": "def test_ok():\n    assert True\n"}) == 1
