"""``vps-ros export``: a checkpoint as an ONNX file or OpenVINO IR, checked against torch.

::

    vps-ros export MODEL --format onnx|openvino --out PATH [--height H --width W]

The exported network runs on the engine of its format (ONNX Runtime for ``onnx``,
OpenVINO for ``openvino``) on a few synthetic test frames beside the torch network; the
largest absolute difference of each output is printed, and a file that differs by more
than :data:`~vps_ros.model.export.TOLERANCE` is not written (exit code 2).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from .paths import check_outputs
from ..data.synthetic.dataset import SyntheticDataset
from ..errors import ConfigError
from ..model.export import FORMATS, TOLERANCE, compare, copy_export, export
from ..model.registry import LoadOptions, open_segmenter
from ..model.segmenter import Segmenter

ENGINE_OF_FORMAT = {"onnx": "onnxruntime", "openvino": "openvino"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="vps_ros checkpoint (.pt)")
    parser.add_argument("--format", required=True, choices=list(FORMATS),
                        help="onnx: an .onnx file (ONNX Runtime, OpenVINO); openvino: an "
                             "OpenVINO IR (.xml with its .bin beside it)")
    parser.add_argument("--out", required=True, type=Path,
                        help="file to write (.onnx, or .xml for openvino)")
    parser.add_argument("--height", type=int, default=0,
                        help="input height (a multiple of 32; default: the checkpoint's)")
    parser.add_argument("--width", type=int, default=0,
                        help="input width (a multiple of 32; default: the checkpoint's)")
    parser.add_argument("--frames", type=int, default=4,
                        help="synthetic test frames to compare on (default: 4)")


def run(args: argparse.Namespace) -> int:
    suffix = FORMATS[args.format]
    if args.out.suffix != suffix:
        raise ConfigError(f"--out {args.out}: a {args.format} export is written as "
                          f"*{suffix}")
    if (args.height == 0) != (args.width == 0) or args.height % 32 or args.width % 32 \
            or args.height < 0 or args.width < 0:
        raise ConfigError(f"--height {args.height} --width {args.width}: give both, as "
                          "positive multiples of 32, or neither")
    if args.frames < 1:
        raise ConfigError(f"--frames {args.frames}: compare on at least one frame")
    check_outputs(files={"--out": args.out})
    size = (args.height, args.width) if args.height else None
    reference = open_segmenter(args.model, LoadOptions(input_size=size, backend="torch"))
    if not isinstance(reference, Segmenter):
        raise ConfigError(f"model {args.model}: only vps_ros checkpoints (.pt) export")
    engine = ENGINE_OF_FORMAT[args.format]
    with tempfile.TemporaryDirectory() as folder:
        written = Path(folder) / f"model{suffix}"
        export(reference, args.format, written, Path(args.model).name)
        exported = open_segmenter(str(written), LoadOptions(backend=engine))
        images = test_images(reference.input_size, args.frames)
        diffs = compare(reference, exported, images)
        same = np.mean([(a.segment_map == b.segment_map).mean() for a, b in
                        zip(reference.segment(images), exported.segment(images))])
        worst = max(diffs.values())
        height, width = reference.input_size
        print(f"{args.model} -> {args.format} ({width}x{height}), checked with {engine} "
              f"against torch on {len(images)} frames:")
        for name, diff in diffs.items():
            print(f"  {name:13s} max abs difference {diff:.2e}")
        print(f"  segment maps  {same:.4%} of pixels the same")
        if not worst <= TOLERANCE:
            raise ConfigError(f"exported network differs from torch by {worst:.2e} (> "
                              f"tolerance {TOLERANCE:.0e}): not written")
        copy_export(written, args.out)
    print(f"wrote {args.out}" + (f" and {args.out.with_suffix('.bin')}"
                                 if args.format == "openvino" else ""))
    return 0


def test_images(size: tuple[int, int], count: int) -> list[np.ndarray]:
    """``count`` frames of the synthetic test split at ``size`` (height, width)."""
    dataset = SyntheticDataset("test", count, 1, size[0], size[1])
    return [frame.image for frame in dataset][:count]
