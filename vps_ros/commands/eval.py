"""``vps-ros eval``: VPQ and STQ of predictions against ground truth, as JSON (and Markdown).

Frames come from the dataset readers of ``vps_ros.data`` through :func:`open_dataset`;
everything else is the metric core.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import eval_coco
from .paths import check_outputs
from ..allocator import keep_freed_memory
from ..data.formats.datasets import open_panoptic
from ..errors import ConfigError
from ..panoptic import DEFAULT_LABEL_DIVISOR
from ..types import ClassTable, PanopticSource
from ..metrics.evaluate import WINDOW_PRESETS, check_windows
from ..metrics.labels import LabelSpace
from ..metrics.report import percent, to_markdown
from ..metrics.sources import evaluate_sources

DEFAULT_CLASSES = {"cityscapes-vps": "cityscapes_vps", "kitti-step": "kitti_step",
                   "vipseg": "vipseg"}
# Image formats: their own runner (categories from the files, image PQ only).
IMAGE_FORMATS = {"coco-panoptic": eval_coco.run}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True,
                        choices=sorted([*WINDOW_PRESETS, *IMAGE_FORMATS]),
                        help="layout of --gt and --pred")
    parser.add_argument("--gt", required=True, type=Path,
                        help="ground-truth dataset (coco-panoptic: its JSON)")
    parser.add_argument("--pred", required=True, type=Path,
                        help="predictions, same layout (coco-panoptic: its JSON)")
    parser.add_argument("--gt-folder", type=Path,
                        help="coco-panoptic: folder of the ground truth's PNGs")
    parser.add_argument("--pred-folder", type=Path,
                        help="coco-panoptic: folder of the predictions' PNGs")
    parser.add_argument("--threads", type=int,
                        help="coco-panoptic: images read in parallel (default: all cores)")
    parser.add_argument("--windows", type=int, nargs="+", metavar="N",
                        help="VPQ window sizes in annotated frames (default per format: "
                        + "; ".join(f"{k} {' '.join(map(str, v))}"
                                    for k, v in WINDOW_PRESETS.items()) + ")")
    parser.add_argument("--label-divisor", type=int, default=DEFAULT_LABEL_DIVISOR,
                        help="panoptic id = class * divisor + instance (default %(default)s)")
    parser.add_argument("--classes", help="class table: a name of config/classes_<name>.yaml or "
                        "a YAML path (default per format)")
    parser.add_argument("--json", type=Path,
                        help="write the results here (required but for coco-panoptic)")
    parser.add_argument("--md", type=Path, help="also write Markdown tables here")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes evaluating sequences in parallel (default 1)")


def run(args: argparse.Namespace) -> int:
    check_outputs(files={"--json": args.json, "--md": args.md})
    keep_freed_memory()
    if args.format in IMAGE_FORMATS:
        return IMAGE_FORMATS[args.format](args)
    if args.json is None:
        raise ConfigError(f"--format {args.format} needs --json")
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    windows = check_windows(args.windows or WINDOW_PRESETS[args.format])
    classes = ClassTable.named(args.classes or DEFAULT_CLASSES[args.format])
    space = LabelSpace(classes, args.label_divisor)
    gt = open_dataset(args.format, args.gt, classes, args.label_divisor)
    pred = open_dataset(args.format, args.pred, classes, args.label_divisor)
    result = evaluate(gt, pred, space, windows, args.workers)
    result.update(format=args.format, classes=classes.name, label_divisor=args.label_divisor)
    write_outputs(result, args.json, args.md)
    print(f"VPQ {percent(result['VPQ'])}  VPQ_things {percent(result['VPQ_things'])}  "
          f"VPQ_stuff {percent(result['VPQ_stuff'])}  STQ {percent(result['STQ'])}  "
          f"AQ {percent(result['AQ'])}  SQ {percent(result['SQ'])}  -> {args.json}")
    return 0


def evaluate(gt: PanopticSource, pred: PanopticSource, space: LabelSpace,
             windows: tuple[int, ...], workers: int = 1) -> dict[str, Any]:
    """The result dictionary of ``vps-ros eval``, with a progress bar over frames."""
    with tqdm(desc="eval", unit="frame", file=sys.stderr, disable=None) as bar:
        stats = evaluate_sources(gt, pred, space, windows, workers, bar.update)
    return stats.result(space.classes)


def write_outputs(result: dict[str, Any], json_path: Path, md_path: Path | None) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    if md_path is not None:
        md_path.parent.mkdir(parents=True, exist_ok=True)
        md_path.write_text(to_markdown(result))


def open_dataset(fmt: str, path: Path, classes: ClassTable, label_divisor: int
                 ) -> PanopticSource:
    """The one seam to the dataset readers (kept thin: everything else is tested
    on in-memory frames)."""
    return open_panoptic(fmt, path, classes, label_divisor)
