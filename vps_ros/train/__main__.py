"""``python -m vps_ros.train --config CFG``: what torchrun starts in every process; the
command itself is :func:`vps_ros.commands.train.rank_main` (this file is an entry point,
like ``vps_ros/cli.py``, not a module anything imports)."""
import sys

from vps_ros.commands.train import rank_main

if __name__ == "__main__":
    sys.exit(rank_main())
