"""Where the package's data files (config/, models/) are.

From a checkout (pip install -e .) they sit beside the vps_ros/ folder. An installed
package has them in <prefix>/share/vps_ros: pip puts them there (setup.py's data
files) under the prefix that holds lib/pythonX.Y/site-packages/vps_ros, and colcon
under an install prefix named in AMENT_PREFIX_PATH (read here directly so that the core
does not depend on ROS Python packages).
"""
import os
from pathlib import Path

from .errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent
# <prefix>/lib/pythonX.Y/site-packages/vps_ros (also .../lib/python3/dist-packages)
_PIP_PREFIX = _PACKAGE.parents[3] if len(_PACKAGE.parents) > 3 else _CHECKOUT


def share_dir() -> Path:
    """The folder holding config/ and models/."""
    if (_CHECKOUT / "config").is_dir() and (_CHECKOUT / "package.xml").is_file():
        return _CHECKOUT
    prefixes = [str(_PIP_PREFIX)] + os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
    for prefix in filter(None, prefixes):
        candidate = Path(prefix) / "share" / "vps_ros"
        if (candidate / "config").is_dir():
            return candidate
    raise ConfigError(
        f"cannot find the vps_ros share folder (config/, models/): not beside {_CHECKOUT}, "
        f"not in {_PIP_PREFIX / 'share' / 'vps_ros'} and not in any prefix of "
        "AMENT_PREFIX_PATH"
    )


def config_path(name: str) -> Path:
    """A file under config/, e.g. ``config_path("perception.yaml")``."""
    return share_dir() / "config" / name


def model_path(name: str) -> Path:
    """A file under models/."""
    return share_dir() / "models" / name
