"""The ``vps-ros`` command: one entry point, one subcommand module per job.

Each subcommand module provides ``add_arguments(parser)`` and ``run(args) -> int``.
Only the module of the subcommand being run is imported, so ``vps-ros eval`` does not
pay for importing torch. Exit codes follow :mod:`vps_ros.commands.exits` (a
:class:`~vps_ros.errors.VpsRosError` is one line on stderr and exit code 2).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .commands.exits import run_command

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "eval": ("vps_ros.commands.eval", "VPQ and STQ of predictions against ground truth"),
    "synth": ("vps_ros.commands.synth", "synthetic driving videos: write a split, print "
              "its statistics, draw a contact sheet"),
    "replay": ("vps_ros.commands.replay", "replay a recorded drive (rosbag2) offline or through "
               "the live node, evaluate VPQ/STQ and write a report"),
    "bag": ("vps_ros.commands.bag", "describe a rosbag2 (complete or not) and repair one "
            "that a killed recorder left behind"),
    "train": ("vps_ros.commands.train", "train the segmenter (kMaX-style mask transformer) from a YAML config"),
    "export": ("vps_ros.commands.export", "export a checkpoint as ONNX or OpenVINO IR "
               "for an inference engine, checked against torch"),
    "cache": ("vps_ros.commands.cache", "show or clear the on-disk cache of engine exports "
              "(bounded: docs/reliability.md)"),
    "compare": ("vps_ros.commands.compare", "compare two replays of the same drives: "
                "deltas with paired-bootstrap intervals, a verdict per metric, a CI gate"),
}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s own arguments are loaded."""
    parser = argparse.ArgumentParser(
        prog="vps-ros", description="Online video panoptic segmentation: data, training, "
        "evaluation and bag replay for the vps_ros ROS 2 package.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(child)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    return run_command(args.command, module.run, args)


if __name__ == "__main__":
    sys.exit(main())
