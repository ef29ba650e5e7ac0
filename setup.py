"""pip install -e . gives the ROS-free core and the `vps-ros` command; extras
(`vps_ros[hf]`, `[engines]`, `[ray]`, `[train]`, `[all]`) add optional backends.

ROS 2 users build with colcon instead (CMakeLists.txt); both read the same sources.
Dependencies are ranges from requirements/core.txt and requirements/extra-*.txt; the
exact versions `make setup` installs are in requirements/lock.txt.
"""
from pathlib import Path

from setuptools import setup

REQUIREMENTS = Path(__file__).parent / "requirements"


def _requirements(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _extras() -> dict[str, list[str]]:
    extras = {path.stem.removeprefix("extra-"): _requirements(path)
              for path in sorted(REQUIREMENTS.glob("extra-*.txt"))}
    extras["all"] = sorted({req for reqs in extras.values() for req in reqs})
    return extras


setup(install_requires=_requirements(REQUIREMENTS / "core.txt"), extras_require=_extras())
