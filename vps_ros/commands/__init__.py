"""Every ``vps-ros`` command, one module per verb: argparse, one library call, and the
exit codes of :mod:`vps_ros.cli`. Nothing below this package imports it."""
