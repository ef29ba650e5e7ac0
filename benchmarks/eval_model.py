"""Quality of a segmenter checkpoint on freshly generated synthetic frames: the figures of
models/MODEL_CARD.md.

    python benchmarks/eval_model.py [--model models/default.pt] [--split test]
        [--sequences 20] [--frames 24] [--tracker MODE] [--threads 1]
        [--height 256 --width 512] [--resize letterbox|stretch] [--input 288x512]

Image PQ (every frame on its own) of the segmenter, then VPQ (windows of 1..4
consecutive frames; every synthetic frame is annotated) and STQ / AQ of the whole
pipeline: the segmenter followed by the tracker, one Pipeline per sequence, exactly as
the node runs it. Deterministic for a given checkpoint and split. ``--height/--width``
render the frames at another camera size (e.g. 1080x1920), which ``--resize`` fits into
the network's input (``--input``: another network input size than the checkpoint's).
"""
from __future__ import annotations

import argparse
import time

import torch

from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.metrics import evaluate_sequences, panoptic_quality
from vps_ros.model.registry import LoadOptions, open_segmenter
from vps_ros.model.resizing import RESIZE_MODES
from vps_ros.pipeline import DEFAULT_MODEL, Pipeline
from vps_ros.resources import model_path
from vps_ros.tracking import TrackerConfig
from vps_ros.train.validate import segments_to_panoptic

WINDOWS = (1, 2, 3, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(model_path(DEFAULT_MODEL)))
    parser.add_argument("--split", default="test")
    parser.add_argument("--sequences", type=int, default=20)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--tracker", default=TrackerConfig().mode,
                        help="tracker mode (default: the default TrackerConfig's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--resize", choices=RESIZE_MODES, default=RESIZE_MODES[0])
    parser.add_argument("--input", help="network input height x width (default: the model's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    input_size = tuple(int(v) for v in args.input.split("x")) if args.input else None
    segmenter = open_segmenter(args.model, LoadOptions(input_size=input_size))
    segmenter.resize = args.resize
    dataset = SyntheticDataset(args.split, args.sequences, args.frames, args.height, args.width)
    divisor, void_id = dataset.label_divisor, dataset.classes.void_id
    image_pairs, sequences = [], {}
    pipeline, current = None, None
    start = time.perf_counter()
    for frame in dataset:
        if frame.sequence != current:
            pipeline = Pipeline(segmenter, TrackerConfig(mode=args.tracker), divisor)
            current = frame.sequence
        tracked = pipeline.step(frame.image, frame.stamp_ns)
        image_pairs.append((frame.panoptic,
                            segments_to_panoptic(tracked.segments, divisor, void_id)))
        sequences.setdefault(frame.sequence, []).append((frame.panoptic, tracked.panoptic))
    seconds = time.perf_counter() - start

    pq = panoptic_quality(image_pairs, dataset.classes, divisor)
    video = evaluate_sequences(sequences.values(), dataset.classes, divisor, WINDOWS)
    print(f"model: {args.model}, input {segmenter.input_size[0]}x{segmenter.input_size[1]}")
    print(f"data: synthetic {args.split} split, {args.sequences} sequences x {args.frames} "
          f"frames at {args.height}x{args.width}, resize {args.resize} ({len(image_pairs)} "
          f"frames, {seconds:.0f} s, {args.threads} thread(s))")
    print(f"PQ {100 * pq['PQ']:.1f}  things {100 * pq['PQ_things']:.1f}  "
          f"stuff {100 * pq['PQ_stuff']:.1f}  SQ {100 * pq['SQ']:.1f}  RQ {100 * pq['RQ']:.1f}")
    windows = "  ".join(f"k={n}: {100 * v:.1f}" for n, v in video["VPQ_windows"].items())
    print(f"tracker {args.tracker}: VPQ {100 * video['VPQ']:.1f} ({windows})  "
          f"things {100 * video['VPQ_things']:.1f}  stuff {100 * video['VPQ_stuff']:.1f}")
    print(f"STQ {100 * video['STQ']:.1f}  AQ {100 * video['AQ']:.1f}  SQ(STQ) "
          f"{100 * video['SQ']:.1f}")
    print("per class PQ: " + "  ".join(
        f"{name} {100 * entry['PQ']:.1f}" for name, entry in pq["per_class"].items()
        if entry.get("PQ") is not None))
    print("per class VPQ: " + "  ".join(
        f"{name} {100 * entry['VPQ']:.1f}" for name, entry in video["per_class"].items()
        if entry.get("VPQ") is not None))


if __name__ == "__main__":
    main()
