"""`pip install .` (not editable) installs config/, launch/ and models/ where the
package finds them: <prefix>/share/vps_ros beside <prefix>/lib/pythonX.Y/site-packages."""
import hashlib
import os
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_plain_pip_install_finds_its_config_and_model(tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                    "--no-build-isolation", "--no-warn-script-location", "--prefix",
                    str(prefix), str(REPO)], check=True, capture_output=True, timeout=600)
    site = next(prefix.glob("lib/python*/site-packages"))
    share = prefix / "share" / "vps_ros"
    probe = ("from vps_ros.resources import share_dir, config_path, model_path; "
             "print(share_dir()); print(config_path('perception.yaml')); "
             "print(model_path('default.pt'))")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(site), "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(share), str(share / "config" / "perception.yaml"),
                   str(share / "models" / "default.pt")]
    for name in ("config/perception.yaml", "config/fastdds.xml", "config/classes_synthetic.yaml",
                 "launch/perception.launch.py", "models/default.pt", "package.xml"):
        assert _digest(share / name) == _digest(REPO / name), name
