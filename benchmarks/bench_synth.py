"""Synthetic generator speed on one CPU core: frames per second at 256x512.

Pins the process to one core and one thread, renders fresh sequences (planning and
textures included, as a trainer iterating the dataset pays them) and reports the median
and spread over repeated runs, by wall clock and by the process's CPU time (frames per
CPU-second, what one otherwise idle core would give; the wall clock also counts time
the core spent on other processes). Goal (issue 4): >= 60 frames/s.

    python benchmarks/bench_synth.py [--runs 5] [--sequences 4] [--frames 60]
"""
import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402  (after limiting threads)

from vps_ros.data.synthetic.dataset import SyntheticDataset  # noqa: E402


def one_run(run: int, sequences: int, frames: int, height: int, width: int) -> dict[str, float]:
    """Frames/s of fresh sequences, with and without their setup, by wall and CPU clock."""
    dataset = SyntheticDataset("train", sequences * (run + 1), frames, height, width)
    spent = {"wall setup": 0.0, "wall render": 0.0, "cpu setup": 0.0, "cpu render": 0.0}
    for index in range(sequences * run, sequences * (run + 1)):
        wall, cpu = time.perf_counter(), time.process_time()
        sequence = dataset.sequence(index)
        wall_mid, cpu_mid = time.perf_counter(), time.process_time()
        for _ in sequence:
            pass
        spent["wall setup"] += wall_mid - wall
        spent["cpu setup"] += cpu_mid - cpu
        spent["wall render"] += time.perf_counter() - wall_mid
        spent["cpu render"] += time.process_time() - cpu_mid
    count = sequences * frames
    rates = {}
    for clock in ("wall", "cpu"):
        render, setup = spent[f"{clock} render"], spent[f"{clock} setup"]
        rates[f"{clock}, with sequence setup"] = count / (render + setup)
        rates[f"{clock}, rendering only"] = count / render
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)
    one_run(0, 1, 5, args.height, args.width)           # warm-up (imports, caches)
    results = [one_run(r, args.sequences, args.frames, args.height, args.width)
               for r in range(args.runs)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"synth {args.height}x{args.width}, 1 core, {args.runs} runs x {args.sequences} "
          f"sequences x {args.frames} frames, load average {load:.1f}")
    for key in results[0]:
        values = [r[key] for r in results]
        print(f"  {key:<32} median {statistics.median(values):6.1f} frames/s "
              f"(min {min(values):.1f}, max {max(values):.1f})")


if __name__ == "__main__":
    main()
