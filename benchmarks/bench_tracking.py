"""Speed of MemoryBuffer.update: 100 stored objects x 100 detections per frame (issue 6),
and, with ``--sweep``, the id errors behind the tracker's default T and alpha.

Speed: two scenes of 100 things (a 10 x 10 grid of moving rectangles on a 256 x 512
segment map, appearance embeddings with per-frame noise; distinct things of 4 classes,
or look-alikes of one class) are rendered in advance; the tracker is warmed up on
them, then every ``update`` call is timed alone.
Each mode is measured in several rounds; the script prints the median and p95 of all
calls, and the spread of the round medians (min..max). Goal: median under 1 ms for
the default mode.

Sweep: the scripted scenes of test/test_tracking_scenarios.py, five seeds each, at two
levels of appearance noise; id errors (switches + ids shared by two actors) summed per
setting.

    python benchmarks/bench_tracking.py [--dim 128] [--rounds 5] [--frames 200]
    python benchmarks/bench_tracking.py --sweep
"""
from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from vps_ros.tracking import MODES, TrackerConfig, make_tracker
from vps_ros.types import FrameSegments

from testkit.tracking_scenes import SCENES, id_errors, run

HEIGHT, WIDTH, GRID = 256, 512, 10


def scene(frames: int, dim: int, look_alike: bool, seed: int = 0) -> list[FrameSegments]:
    """``frames`` frames of 100 things drifting right by 1 px per frame, plus one road.

    Distinct things: 4 classes, random looks (few admissible pairs per row). Look-alike
    things: one class, looks within cosine 0.998 of one another, so every pair passes
    the class gate and nearly every one the threshold: the densest Hungarian problem.
    """
    rng = np.random.default_rng(seed)
    count = GRID * GRID
    if look_alike:
        looks = rng.normal(size=dim) + 0.03 * rng.normal(size=(count, dim))
        classes = np.array([0] + [6] * count, np.int32)
    else:
        looks = rng.normal(size=(count, dim))
        classes = np.concatenate([[0], rng.integers(6, 10, count)]).astype(np.int32)
    cell_w, cell_h = WIDTH // GRID, HEIGHT // GRID
    x0 = np.tile(np.arange(GRID) * cell_w + 4, GRID)
    y0 = np.repeat(np.arange(GRID) * cell_h + 3, GRID)
    out = []
    for t in range(frames):
        shift = t % (cell_w - 38)
        boxes = np.stack([x0 + shift, y0, x0 + shift + 30, y0 + cell_h - 6], 1)
        segment_map = np.zeros((HEIGHT, WIDTH), np.int32)
        for k, (a, b, c, d) in enumerate(boxes):
            segment_map[b:d, a:c] = k + 1
        emb = looks + 0.01 * rng.normal(size=looks.shape)
        emb = np.vstack([np.ones((1, dim)), emb])
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        all_boxes = np.vstack([[0, 0, WIDTH, HEIGHT], boxes]).astype(np.float32)
        areas = np.bincount(segment_map.ravel(), minlength=count + 1).astype(np.int64)
        out.append(FrameSegments(segment_map, classes, np.full(count + 1, 0.9, np.float32),
                                 np.arange(count + 1) > 0, all_boxes, areas,
                                 emb.astype(np.float32)))
    return out


def time_mode(frames: list[FrameSegments], mode: str, rounds: int):
    """(all call times ms, median of each round ms, matching space of the last round)."""
    samples, round_medians = [], []
    for _ in range(rounds):
        tracker = make_tracker(TrackerConfig(mode=mode))
        for segments in frames[:5]:
            tracker.update(segments)
        times = []
        for segments in frames[5:]:
            start = time.perf_counter_ns()
            tracker.update(segments)
            times.append(time.perf_counter_ns() - start)
        samples += times
        round_medians.append(np.median(times) / 1e6)
    space = tracker.matching_space()
    return np.array(samples) / 1e6, round_medians, space


def sweep(seeds: range = range(5), noises: tuple = (0.05, 0.1)) -> None:
    settings = [{"mode": m} for m in ("naive_mb", "iou_stitch", "hila_mb_near_online")]
    settings += [{"temperature": t, "alpha": a}
                 for t, a in itertools.product((0.05, 0.1, 0.2, 0.5, 1.0), (0.3, 0.4, 0.5, 0.6))]
    print(f"id errors over the scripted scenes, seeds {seeds.start}..{seeds.stop - 1} "
          "(per scene: both noise levels together)")
    print(f"{'setting':<28}" + "".join(f"{'noise ' + str(n):>11}" for n in noises)
          + "".join(f"{name:>17}" for name in SCENES))
    for overrides in settings:
        per_scene = {name: [0] * len(noises) for name in SCENES}
        for (name, (build, frames, min_visible)), (k, noise), seed in itertools.product(
                SCENES.items(), enumerate(noises), seeds):
            track = run(make_tracker(TrackerConfig(**overrides)), build(seed), frames, seed,
                        noise, min_visible)
            per_scene[name][k] += id_errors(track)
        totals = [sum(v[k] for v in per_scene.values()) for k in range(len(noises))]
        label = ", ".join(f"{k}={v}" for k, v in overrides.items())
        print(f"{label:<28}" + "".join(f"{t:>11}" for t in totals)
              + "".join(f"{sum(v):>17}" for v in per_scene.values()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=128, help="embedding dimension")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=200, help="timed frames per round + 5")
    parser.add_argument("--sweep", action="store_true",
                        help="id errors of T x alpha on the scripted scenes instead of speed")
    args = parser.parse_args()
    if args.sweep:
        sweep()
        return
    print(f"update() with 100 stored objects x 100 detections, D={args.dim}, "
          f"{args.rounds} rounds x {args.frames} frames, map {HEIGHT}x{WIDTH}")
    print(f"{'things':<12}{'mode':<22}{'median ms':>10}{'p95 ms':>9}{'round medians ms':>20}"
          f"{'last M x N':>13}")
    for look_alike in (False, True):
        frames = scene(args.frames + 5, args.dim, look_alike)
        for mode in MODES:
            ms, medians, space = time_mode(frames, mode, args.rounds)
            spread = f"{min(medians):.3f}..{max(medians):.3f}"
            print(f"{'look-alike' if look_alike else 'distinct':<12}{mode:<22}"
                  f"{np.median(ms):>10.3f}{np.percentile(ms, 95):>9.3f}{spread:>20}"
                  f"{space.last[0]:>7} x {space.last[1]:<4}")


if __name__ == "__main__":
    main()
