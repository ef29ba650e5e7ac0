"""``vps-ros synth``: write a synthetic split, print split statistics, draw a contact sheet.

::

    vps-ros synth OUT [--split test] [--format cityscapes-vps|kitti-step|rosbag2] ...
    vps-ros synth stats DIR
    vps-ros synth --preview sheet.png [--split ...]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator

import cv2
from tqdm import tqdm

from .paths import check_outputs
from ..errors import ConfigError
from ..data import bags
from ..data.formats.datasets import WRITE_FORMATS, write_dataset
from ..data.frames import VideoFrame
from ..data.preview import contact_sheet
from ..data.synthetic.stats import folder_stats, format_table, write_meta
from ..data.synthetic.dataset import SPLIT_SEED_BASE, SyntheticDataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="*", metavar="OUT | stats DIR",
                        help="folder to write the split into, or `stats DIR` to print the "
                             "statistics of the splits written into DIR")
    parser.add_argument("--split", default="train", choices=list(SPLIT_SEED_BASE),
                        help="which split (disjoint seeds; `occlusion`: a 20-30 frame full "
                             "occlusion in every sequence) (default: train)")
    parser.add_argument("--format", default="cityscapes-vps", choices=list(WRITE_FORMATS),
                        help="layout to write (default: cityscapes-vps)")
    parser.add_argument("--storage", default="mcap", choices=list(bags.STORAGES),
                        help="rosbag2 storage (default: mcap)")
    parser.add_argument("--compressed", action="store_true",
                        help="rosbag2: also record /camera/image_raw/compressed (jpeg)")
    parser.add_argument("--sequences", type=int, default=4, help="number of sequences (default: 4)")
    parser.add_argument("--frames", type=int, default=60, help="frames per sequence (default: 60)")
    parser.add_argument("--height", type=int, default=256, help="image height (default: 256)")
    parser.add_argument("--width", type=int, default=512, help="image width (default: 512)")
    parser.add_argument("--preview", type=Path, metavar="PNG",
                        help="also write a contact sheet (frames above coloured ground truth)")


class _Recorder:
    """The dataset's frames, sequence by sequence, keeping each sequence's track facts."""

    def __init__(self, dataset: SyntheticDataset, progress: bool) -> None:
        self.dataset = dataset
        self.classes, self.label_divisor = dataset.classes, dataset.label_divisor
        self.frame_rate, self.intrinsics = dataset.frame_rate, dataset.intrinsics
        self.progress = progress
        self.metas = []

    def __iter__(self) -> Iterator[VideoFrame]:
        indices = range(self.dataset.num_sequences)
        for index in tqdm(indices, desc="sequences", unit="seq", disable=not self.progress):
            sequence = self.dataset.sequence(index)
            yield from sequence
            self.metas.append(sequence.meta)


def run(args: argparse.Namespace) -> int:
    if args.target[:1] == ["stats"]:
        if len(args.target) != 2:
            raise ConfigError("usage: vps-ros synth stats DIR")
        stats = [s for folder in args.target[1:] for s in folder_stats(Path(folder))]
        print(format_table(stats))
        return 0
    if len(args.target) > 1:
        raise ConfigError(f"expected one output folder, got {' '.join(args.target)}")
    if not args.target and args.preview is None:
        raise ConfigError("give an output folder, `stats DIR`, or --preview PNG")
    check_outputs(files={"--preview": args.preview},
                  folders={"OUT": args.target[0] if args.target else None})
    dataset = SyntheticDataset(args.split, args.sequences, args.frames, args.height, args.width)
    if args.target:
        out = Path(args.target[0])
        recorder = _Recorder(dataset, progress=sys.stderr.isatty())
        if args.format == "rosbag2":
            write_dataset("rosbag2", recorder, out / args.split, storage=args.storage,
                          compressed_topic=bags.COMPRESSED_TOPIC if args.compressed else None)
        else:
            write_dataset(args.format, recorder, out, split=args.split)
        write_meta(out / f"synth_meta_{args.split}.json", args.split, recorder.metas,
                   (args.height, args.width))
        print(f"wrote {args.sequences} x {args.frames} frames of split {args.split} to {out} "
              f"({args.format})")
    if args.preview is not None:
        sheet = contact_sheet(dataset, sequences=min(3, args.sequences))
        args.preview.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.preview), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(f"wrote contact sheet {args.preview}")
    return 0
