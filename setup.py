"""pip install . (or -e .) gives the ROS-free core and the `vps-ros` command; extras
(`vps_ros[hf]`, `[engines]`, `[ray]`, `[train]`, `[all]`) add optional backends.

ROS 2 users build with colcon instead (CMakeLists.txt); both read the same sources.
Dependencies are ranges from requirements/core.txt and requirements/extra-*.txt; the
exact versions `make setup` installs are in requirements/lock.txt.
"""
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
REQUIREMENTS = ROOT / "requirements"
SHARE_FOLDERS = ("config", "launch", "models")


def _requirements(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _extras() -> dict[str, list[str]]:
    extras = {path.stem.removeprefix("extra-"): _requirements(path)
              for path in sorted(REQUIREMENTS.glob("extra-*.txt"))}
    extras["all"] = sorted({req for reqs in extras.values() for req in reqs})
    return extras


def _share_files() -> list[tuple[str, list[str]]]:
    """config/, launch/, models/ and package.xml in <prefix>/share/vps_ros, where colcon
    installs them too and vps_ros.resources looks for them."""
    files = [("share/vps_ros", ["package.xml"])]
    for folder in SHARE_FOLDERS:
        names = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / folder).iterdir()
                       if p.is_file() and not p.name.startswith("."))
        files.append((f"share/vps_ros/{folder}", names))
    return files


setup(install_requires=_requirements(REQUIREMENTS / "core.txt"), extras_require=_extras(),
      data_files=_share_files())
