"""``vps-ros export``: a checkpoint as an ONNX file or OpenVINO IR, checked against torch.

::

    vps-ros export MODEL --format onnx|openvino --out PATH [--height H --width W]
                         [--quantization none|int8|auto]

The exported network runs on the engine of its format (ONNX Runtime for ``onnx``,
OpenVINO for ``openvino``) on a few synthetic test frames beside the torch network; the
largest absolute difference of each output is printed, and a file that differs by more
than :data:`~vps_ros.model.export.TOLERANCE` is not written (exit code 2).

``--quantization int8`` (``--format openvino``; ``auto``: int8 for openvino, none for
onnx): the INT8 OpenVINO IR the node's ``quantization: int8`` runs, made by the same
code (:func:`~vps_ros.model.engines.segmenter.cached_network`: the checkpoint's ONNX
export and its NNCF quantization, in the export cache the node reads, so that its first
start does not quantize), then copied to ``--out``. INT8 differs from torch by design:
its differences are printed, and only outputs that are not finite refuse the file.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from .paths import check_outputs
from ..data.synthetic.dataset import SyntheticDataset
from ..errors import ConfigError
from ..metrics import panoptic_quality
from ..model.engines.quantize import QUANTIZATIONS
from ..model.engines.segmenter import cached_network
from ..model.export import FORMATS, TOLERANCE, compare, copy_export, export
from ..model.registry import LoadOptions, open_segmenter
from ..model.segmenter import Segmenter
from ..panoptic import DEFAULT_LABEL_DIVISOR
from ..train.validate import segments_to_panoptic
from ..types import ClassTable, FrameSegments

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
    parser.add_argument("--quantization", default="none",
                        help="int8 (--format openvino): the network quantized by OpenVINO "
                             "NNCF as the node's quantization: int8 does, also left in the "
                             "export cache the node reads; auto: int8 for openvino, none "
                             "for onnx; none: fp32 (default)")


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
    if args.quantization not in QUANTIZATIONS:
        raise ConfigError(f"--quantization {args.quantization}: not one of "
                          f"{', '.join(QUANTIZATIONS)}")
    if args.quantization == "int8" and args.format != "openvino":
        raise ConfigError("--quantization int8: an INT8 network is an OpenVINO IR; use "
                          "--format openvino")
    int8 = args.quantization != "none" and args.format == "openvino"
    check_outputs(files={"--out": args.out})
    size = (args.height, args.width) if args.height else None
    reference = open_segmenter(args.model, LoadOptions(input_size=size, backend="torch"))
    if not isinstance(reference, Segmenter):
        raise ConfigError(f"model {args.model}: only vps_ros checkpoints (.pt) export")
    engine = ENGINE_OF_FORMAT[args.format]
    with tempfile.TemporaryDirectory() as folder:
        if int8:
            written = cached_network(reference, args.model, reference.input_size,
                                     LoadOptions(backend=engine, quantization="int8"))
        else:
            written = Path(folder) / f"model{suffix}"
            export(reference, args.format, written, Path(args.model).name)
        exported = open_segmenter(str(written), LoadOptions(backend=engine))
        images = test_images(reference.input_size, args.frames)
        diffs = compare(reference, exported, images)
        pairs = list(zip(reference.segment(images), exported.segment(images)))
        same = np.mean([(a.segment_map == b.segment_map).mean() for a, b in pairs])
        agreement = panoptic_agreement(pairs, reference.classes)
        worst = max(diffs.values())
        height, width = reference.input_size
        print(f"{args.model} -> {args.format}{' INT8' if int8 else ''} ({width}x{height}), "
              f"checked with {engine} against torch on {len(images)} frames:")
        for name, diff in diffs.items():
            print(f"  {name:13s} max abs difference {diff:.2e}")
        print(f"  segment maps  {same:.4%} of pixels the same")
        print("  segments      " + ("no segments on these frames" if agreement is None else
                                     f"PQ {agreement:.2%} with torch's as the ground truth"))
        if int8:
            if not np.isfinite(worst):
                raise ConfigError(f"INT8 network's outputs are not finite (max abs "
                                  f"difference {worst:.2e}): not written")
            print(f"  cached for the node (quantization: int8): {written}")
        elif not worst <= TOLERANCE:
            raise ConfigError(f"exported network differs from torch by {worst:.2e} (> "
                              f"tolerance {TOLERANCE:.0e}): not written")
        copy_export(written, args.out)
    print(f"wrote {args.out}" + (f" and {args.out.with_suffix('.bin')}"
                                 if args.format == "openvino" else ""))
    return 0


def panoptic_agreement(pairs: list[tuple[FrameSegments, FrameSegments]],
                       classes: ClassTable) -> float | None:
    """PQ of the exported network's segments with torch's as the ground truth: 1 where
    they match, None where neither has any; unlike the share of equal segment-map pixels it does not fall when a
    network (INT8) orders the same segments differently."""
    return panoptic_quality([(segments_to_panoptic(a, DEFAULT_LABEL_DIVISOR, classes.void_id),
                              segments_to_panoptic(b, DEFAULT_LABEL_DIVISOR, classes.void_id))
                             for a, b in pairs], classes, DEFAULT_LABEL_DIVISOR)["PQ"]


def test_images(size: tuple[int, int], count: int) -> list[np.ndarray]:
    """``count`` frames of the synthetic test split at ``size`` (height, width)."""
    dataset = SyntheticDataset("test", count, 1, size[0], size[1])
    return [frame.image for frame in dataset][:count]
