"""The package's version, in a module of its own: a colcon build of the messages
generates a ``vps_ros/__init__.py`` of its own, which may replace ours where both are
installed into one folder, so nothing may depend on what ``__init__`` defines."""
__version__ = "0.2.0"
