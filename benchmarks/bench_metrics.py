"""VPQ (windows 1-4) + STQ throughput and peak memory: metric core vs plain reference.

Frames are 1024x2048 with 60 ground-truth segments (Voronoi cells of moving seeds,
so tracks persist), 30-frame sequences; predictions are the ground truth shifted by
a few pixels with id switches, class errors and void. The plain reference
(testkit/metrics_reference.py) stacks each window's frames and runs one np.unique over
it; STQ runs one np.unique per frame.

Peak memory is the peak of Python/numpy allocations (tracemalloc) made while
evaluating; the frames themselves are generated beforehand and not counted.

    python benchmarks/bench_metrics.py [--repeats 5] [--frames 30]
"""
from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np

from testkit.metrics_reference import stq_reference, vpq_reference

from vps_ros.metrics import LabelSpace, SequenceEvaluator
from vps_ros.types import ClassInfo, ClassTable

H, W, SEGMENTS = 1024, 2048, 60
WINDOWS = (1, 2, 3, 4)
DIVISOR, VOID = 1000, 255
CLASSES = ClassTable("bench", tuple(
    ClassInfo(i, f"class{i}", i >= 11, (0, 0, 0)) for i in range(19)))


def make_frames(count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(gt, pred) pairs of a sequence whose 60 segments drift across the image."""
    rng = np.random.default_rng(seed)
    seeds = rng.uniform([0, 0], [H, W], size=(SEGMENTS, 2))
    velocity = rng.normal(0, 6, size=(SEGMENTS, 2))
    classes = np.concatenate([np.arange(11), rng.integers(11, 19, SEGMENTS - 11)])
    instances = np.where(classes >= 11, np.arange(SEGMENTS) + 1, 0)
    gt_ids = classes * DIVISOR + instances
    pred_ids = gt_ids.copy()
    ys, xs = np.mgrid[0:H:4, 0:W:4]
    frames = []
    for t in range(count):
        centres = seeds + t * velocity
        d = (ys[..., None] - centres[:, 0]) ** 2 + (xs[..., None] - centres[:, 1]) ** 2
        cell = np.argmin(d, axis=-1)
        cell = np.kron(cell, np.ones((4, 4), np.int64))
        gt = gt_ids[cell].astype(np.int32)
        gt[:40] = VOID * DIVISOR                      # ego-vehicle hood style void band
        if rng.random() < 0.3:                        # an id switch that persists
            k = rng.integers(11, SEGMENTS)
            pred_ids[k] = gt_ids[k] + 500
        if rng.random() < 0.2:                        # a class error on one frame
            pred_ids_t = pred_ids.copy()
            pred_ids_t[rng.integers(0, SEGMENTS)] = 5 * DIVISOR
        else:
            pred_ids_t = pred_ids
        pred = np.roll(pred_ids_t[cell], rng.integers(-6, 7), axis=1).astype(np.int32)
        pred[-30:] = VOID * DIVISOR
        frames.append((gt, pred))
    return frames


def run_core(frames: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    evaluator = SequenceEvaluator(LabelSpace(CLASSES, DIVISOR), WINDOWS, "bench")
    for gt, pred in frames:
        evaluator.add(gt, pred)
    return evaluator.finish().result(CLASSES)


def run_reference(frames: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    is_thing = CLASSES.is_thing_lut.tolist()
    vpq = vpq_reference([frames], is_thing, VOID, DIVISOR, WINDOWS)
    stq = stq_reference([frames], is_thing, VOID, DIVISOR)
    return {"VPQ": float(np.mean([vpq[n]["VPQ"] for n in WINDOWS])), "STQ": stq["STQ"]}


def timed(fn, frames, repeats: int) -> tuple[list[float], dict]:
    rates, result = [], {}
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(frames)
        rates.append(len(frames) / (time.perf_counter() - start))
    return rates, result


def peak_mib(fn, frames) -> float:
    tracemalloc.start()
    fn(frames)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2 ** 20


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):7.2f}  (min {min(values):.2f}, "
            f"max {max(values):.2f}, n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    frames = make_frames(args.frames)
    print(f"{args.frames} frames of {W}x{H}, {SEGMENTS} segments each, VPQ windows "
          f"{WINDOWS} + STQ, {args.repeats} repeats")

    core_rates, core = timed(run_core, frames, args.repeats)
    ref_rates, ref = timed(run_reference, frames, args.repeats)
    assert abs(core["VPQ"] - ref["VPQ"]) < 1e-9 and abs(core["STQ"] - ref["STQ"]) < 1e-9, \
        (core["VPQ"], ref["VPQ"], core["STQ"], ref["STQ"])
    print(f"VPQ {core['VPQ']:.4f}  STQ {core['STQ']:.4f} (core and reference agree to 1e-9)")
    print(f"core       frames/s  {spread(core_rates)}")
    print(f"reference  frames/s  {spread(ref_rates)}")
    ratios = [c / r for c, r in zip(core_rates, ref_rates)]
    print(f"speed-up (core/reference, paired runs)  {spread(ratios)}")

    print(f"peak memory core       {peak_mib(run_core, frames):8.1f} MiB")
    print(f"peak memory reference  {peak_mib(run_reference, frames):8.1f} MiB")
    for length in (10, 30, 90):
        sequence = [frames[t % len(frames)] for t in range(length)]
        print(f"peak memory core, {length:3d}-frame sequence  "
              f"{peak_mib(run_core, sequence):8.1f} MiB")


if __name__ == "__main__":
    main()
