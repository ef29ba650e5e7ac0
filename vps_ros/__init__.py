"""vps_ros: online video panoptic segmentation for ROS 2.

The core (model, tracking, metrics, data, pipeline) is plain Python and never imports
ROS; only :mod:`vps_ros.ros` does.
"""
from pkgutil import extend_path

from .version import __version__  # noqa: F401  (the version lives in version.py)

# The generated message module ``vps_ros.msg`` is installed by colcon into another
# prefix than this source tree during development; extending the package path lets
# ``import vps_ros.msg`` find it there while everything else comes from here.
__path__ = extend_path(__path__, __name__)
