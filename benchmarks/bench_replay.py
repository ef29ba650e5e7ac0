"""Offline replay speed: frames per second of ``vps-ros replay --mode offline`` on the
synthetic test bag (goal: at least the recording rate, 10 Hz, on this CPU).

The bag is the one the demo replays: one synthetic validation drive written by the data
CLI's writer (default 50 frames of 256 x 512 at 10 Hz, ground truth on every frame).
Each round replays it end to end in this process (read, segment, track, score, record
nothing, draw the contact sheet and timeline; the overlay video only with --video) with
the shipped model and config/perception.yaml (one torch thread). The script prints
frames/s per round, their median and spread (min..max), and the median per-frame
pipeline time.

    python benchmarks/bench_replay.py [--frames 50] [--rounds 3] [--model PATH] [--video]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from vps_ros.data import bags
from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.replay.cameras import cameras_of
from vps_ros.replay.runner import ReplayOptions, replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="", help="checkpoint (default models/default.pt)")
    parser.add_argument("--params", type=Path, help="node parameters file")
    parser.add_argument("--video", action="store_true", help="also write overlay.mp4")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset = SyntheticDataset("val", 1, args.frames, args.height, args.width)
        bag = bags.write(dataset, root / "bags")[0]
        cameras = cameras_of([bags.IMAGE_TOPIC], [bags.GT_TOPIC])
        rates, step_ms = [], []
        for round_ in range(args.rounds):
            options = ReplayOptions(bag, cameras, root / f"report{round_}", model=args.model,
                                    params=args.params, video=args.video, progress=False)
            document = replay(options)
            rates.append(document["frames_per_s"])
            step_ms.append(document["latency_ms"]["p50"])
            print(f"round {round_ + 1}: {document['frames']} frames in "
                  f"{document['wall_s']:.2f} s = {rates[-1]:.2f} frames/s "
                  f"(pipeline p50 {step_ms[-1]:.1f} ms/frame)", flush=True)
    print(f"offline replay, {args.frames} frames of {args.width}x{args.height}: median "
          f"{statistics.median(rates):.2f} frames/s (spread {min(rates):.2f}..{max(rates):.2f} "
          f"over {args.rounds} rounds); pipeline p50 {statistics.median(step_ms):.1f} ms/frame "
          f"-> at most {1000 / statistics.median(step_ms):.1f} frames/s; goal >= 10 Hz")


if __name__ == "__main__":
    main()
