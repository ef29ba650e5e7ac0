"""``vps-ros eval --format coco-panoptic``: image PQ of COCO panoptic files as
panopticapi's ``pq_compute`` gives it (its table on stdout, everything in --json)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from tqdm import tqdm

from ..data.formats.coco_images import CocoPanopticPairs
from ..errors import ConfigError
from ..metrics.coco import CategoryIndex, coco_result, coco_table, score_images


def default_threads() -> int:
    """All cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run(args: argparse.Namespace) -> int:
    missing = [flag for flag, value in (("--gt-folder", args.gt_folder),
                                        ("--pred-folder", args.pred_folder)) if value is None]
    if missing:
        raise ConfigError(f"--format coco-panoptic needs {' and '.join(missing)} (the PNG folders)")
    threads = args.threads or default_threads()
    if threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    files = CocoPanopticPairs(args.gt, args.gt_folder, args.pred, args.pred_folder)
    index = CategoryIndex(files.categories)
    with tqdm(total=len(files), desc="eval", unit="image", file=sys.stderr,
              disable=None) as bar:
        counts = score_images(files.overlaps, len(files), index, threads, bar.update)
    result = coco_result(counts, index)
    result.update(format="coco-panoptic", num_images=len(files), threads=threads)
    print(coco_table(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
