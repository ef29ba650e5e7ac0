"""``vps-ros compare``: run B against run A (two ``vps-ros replay`` output folders over the
same drives), deltas with paired-bootstrap 95 % intervals and a verdict per metric; exit
1 when a ``--fail-if-worse`` gate fails (docs/compare.md)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .paths import check_outputs
from ..replay.compare import DEFAULT_RESAMPLES, Gate, apply_gates, compare_runs, metric_list
from ..replay.compare_frames import worst_drive_frames
from ..replay.compare_report import prepare_out, print_summary, write_json, write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", type=Path, metavar="RUN_A", help="the reference run: "
                        "--out folder of vps-ros replay (one drive or a fleet)")
    parser.add_argument("run_b", type=Path, metavar="RUN_B", help="the run compared with it, "
                        "over the same drives and ground truth")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write compare.md, a "
                        "picture per metric and, for the three drives that lost most, "
                        "ground truth | A | B where B lost most (those drives are replayed "
                        "again) here")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the comparison "
                        "(metrics, per_class, drives, resamples, seed) as JSON")
    parser.add_argument("--fail-if-worse", action="append", default=[],
                        metavar="METRIC[:POINTS]", help="exit 1 when B is worse than A on "
                        "METRIC by more than POINTS (percentage points for fractions) with "
                        "the whole 95 %% interval beyond -POINTS; without POINTS, when the "
                        "whole interval is worse than 0. Repeatable, e.g. VPQ:0.5")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, metavar="N",
                        help="bootstrap resamples (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default "
                        "%(default)s)")


def run(args: argparse.Namespace) -> int:
    names = [m.name for m in metric_list(())]      # a misspelt gate fails before the work
    gates = [Gate.parse(text, names) for text in args.fail_if_worse]
    check_outputs(files={"--json": args.json}, folders={"--out": args.out})
    document, pictures = compare_runs(args.run_a, args.run_b, args.resamples, args.seed)
    failed = apply_gates(document, gates)
    if args.json:
        write_json(document, args.json)
    if args.out:
        prepare_out(args.out)
        frames = worst_drive_frames(pictures["drives_a"], pictures["drives_b"],
                                    document["drives"], args.out)
        write_report(document, pictures, args.out, frames)
    print_summary(document)
    for gate in failed:
        print(f"vps-ros compare: --fail-if-worse {gate}: B is worse than A")
    return 1 if failed else 0
