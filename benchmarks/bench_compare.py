"""``vps-ros compare`` of two 500-drive fleets: wall time of the whole library call
(reading 2 x 500 drive files, checking them, the exact totals, the paired bootstrap with
9999 resamples, per-drive deltas), without the report's pictures.

The drive files are written in the exact format of a fleet replay's
``drives/<drive>.json``: statistics of one camera stream per drive with 19 classes
(11 stuff, 8 things, as Cityscapes), VPQ windows 1-4, a dense confusion matrix and a
latency histogram of 300 frames; run B is run A with some counts moved (so deltas are
not zero). Everything is seeded.

    python benchmarks/bench_compare.py [--drives 500] [--resamples 9999] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from vps_ros.replay.compare import compare_runs
from vps_ros.replay.latency import LatencyHistogram
from vps_ros.types import ClassInfo, ClassTable

CLASSES = ClassTable("bench", tuple(ClassInfo(i, f"class{i}", i >= 11, (0, 0, 0))
                                    for i in range(19)))
WINDOWS = [1, 2, 3, 4]
FRAMES = 300


def drive(name: str, rng: np.random.Generator, worse: float) -> dict:
    nc, nw = len(CLASSES), len(WINDOWS)
    tubes = rng.integers(5, 60, size=(nw, nc))
    tp = np.minimum(tubes, rng.binomial(tubes, 0.7 - worse))
    fn = tubes - tp
    fp = rng.integers(0, 20, size=(nw, nc))
    iou = tp * rng.uniform(0.7, 0.9, size=(nw, nc))
    confusion = rng.integers(0, 1000, size=(nc + 1, nc + 1))
    confusion[np.arange(nc), np.arange(nc)] += 200_000
    tracks = int(rng.integers(5, 40))
    latency = rng.gamma(20, 3.5, size=FRAMES).tolist()
    state = {"windows": WINDOWS, "iou": iou.tolist(), "tp": tp.tolist(), "fp": fp.tolist(),
             "fn": fn.tolist(), "confusion": confusion.tolist(),
             "aq_sum": float(tracks * rng.uniform(0.3, 0.6) * (1 - worse)),
             "num_tracks": tracks, "num_sequences": 1, "num_frames": FRAMES // 5}
    return {"drive": name, "bag": f"/drives/{name}", "error": None, "frames": FRAMES,
            "annotated_frames": FRAMES // 5, "dropped_frames": int(rng.integers(0, 3)),
            "id_switches": int(rng.integers(0, 20)), "recoveries": int(rng.integers(0, 5)),
            "classes": CLASSES.to_dict(), "label_divisor": 1000, "windows": WINDOWS,
            "sequences": {f"{name}/front": state},
            "latency": LatencyHistogram.of(latency).state_dict()}


def write_fleets(root: Path, drives: int) -> tuple[Path, Path]:
    """Run A and run B: the same ground truth (tubes, GT pixels, tracks), B's TP lower."""
    for run, worse in (("A", 0.0), ("B", 0.01)):
        folder = root / run / "drives"
        folder.mkdir(parents=True)
        for k in range(drives):
            data = drive(f"drive{k:04d}", np.random.default_rng(k), worse)
            if run == "B":           # B keeps A's ground truth: only predictions change
                a = json.loads((root / "A" / "drives" / f"drive{k:04d}.json").read_text())
                seq_a, seq_b = a["sequences"][f"drive{k:04d}/front"], \
                    data["sequences"][f"drive{k:04d}/front"]
                seq_b.update(num_tracks=seq_a["num_tracks"], confusion=seq_a["confusion"],
                             fn=(np.add(seq_a["tp"], seq_a["fn"]) - seq_b["tp"]).tolist())
            (folder / f"drive{k:04d}.json").write_text(json.dumps(data))
    return root / "A", root / "B"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drives", type=int, default=500)
    parser.add_argument("--resamples", type=int, default=9999)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = write_fleets(Path(tmp), args.drives)
        times, document = [], None
        for _ in range(args.repeats):
            started = time.perf_counter()
            document, _ = compare_runs(a, b, args.resamples, 0)
            times.append(time.perf_counter() - started)
    vpq = document["metrics"]["VPQ"]
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.processor() or platform.machine()}")
    print(f"compare {args.drives} vs {args.drives} drives, {args.resamples} paired resamples: "
          f"median {statistics.median(times):.2f} s (min {min(times):.2f}, max "
          f"{max(times):.2f}, {args.repeats} runs); VPQ delta {100 * vpq['delta']:+.2f} "
          f"[{100 * vpq['ci_low']:+.2f}, {100 * vpq['ci_high']:+.2f}] points, {vpq['verdict']}")


if __name__ == "__main__":
    main()
