"""``vps-ros cache``: the on-disk cache of engine exports, shown or emptied.

::

    vps-ros cache info [--params FILE]   where the cache is, files and MB per folder,
                                         its bounds (the defaults, or FILE's limits)
    vps-ros cache clear    delete every export and TensorRT engine in it

The cache is ``$VPS_ROS_CACHE``, else ``~/.cache/vps_ros``
(:mod:`vps_ros.model.engines.export_cache`); a running node keeps the sessions it
has open, and exports again a size it meets afterwards.
"""
from __future__ import annotations

import argparse

from ..model.engines.backends import cache_dir
from ..model.engines.export_cache import MB, clear, info
from ..model.limits import InputLimits

ACTIONS = ("info", "clear")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="info: what the cache holds; "
                        "clear: delete it")
    parser.add_argument("--params", help="info: a node parameters file whose limits "
                        "section gives the bounds shown (default: the defaults)")


def run(args: argparse.Namespace) -> int:
    folders = clear() if args.action == "clear" else info()
    verb = "deleted" if args.action == "clear" else "holds"
    if not folders:
        print(f"{cache_dir()}: empty (no exports, no engines)")
    for folder in folders:
        print(f"{folder.path}: {verb} {folder.files} file(s), {folder.bytes / MB:.1f} MB")
    if args.action == "info":
        limits, where = InputLimits(), "defaults"
        if args.params:
            from ..pipeline import PipelineConfig   # torch, only when asked
            limits, where = PipelineConfig.from_params_file(args.params).limits, args.params
        print(f"bounds ({where}): {limits.export_cache_files} exports, "
              f"{limits.export_cache_mb} MB (limits.export_cache_files, "
              "limits.export_cache_mb), least recently used deleted beyond")
    return 0
