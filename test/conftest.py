"""Shared fixtures. ROS processes started by tests get their own ROS_DOMAIN_ID and stay
on loopback (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST)."""
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_domains = itertools.count((os.getpid() * 7) % 80 + 1)


@pytest.fixture(scope="session", autouse=True)
def export_cache(tmp_path_factory) -> Path:
    """Networks exported at configure (backend openvino/onnxruntime) go to a folder of
    this test session, not to the user's ~/.cache/vps_ros (child processes inherit it)."""
    folder = tmp_path_factory.mktemp("vps_ros_cache")
    os.environ["VPS_ROS_CACHE"] = str(folder)
    return folder


@pytest.fixture
def ros_env() -> dict:
    """Environment for a ROS child process: a domain of its own, loopback discovery."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(next(_domains) % 100 + 1)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def python_process(args: list[str], env: dict, **kwargs) -> subprocess.Popen:
    """Start ``python args...`` with pipes for stdout/stderr (text)."""
    return subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)
