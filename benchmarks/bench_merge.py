"""Speed of the mask-wise merge (``merge_masks``) on the shipped model's outputs, against
the merge of an earlier revision side by side.

    python benchmarks/bench_merge.py [--baseline REV] [--frames 8] [--rounds 40]
                                     [--threads 1] [--profile]

The shipped model predicts ``--frames`` frames of the synthetic test split once; then
both merges run on the same outputs in turns, one call each per frame and round, so a
neighbour's load on this shared machine falls on both alike. The baseline is
``vps_ros/model/postprocess.py`` as committed at ``--baseline`` (default ``HEAD``),
loaded from ``git show`` as a module beside the current one; the two must give the same
segments (checked on every frame before timing). Which of the two runs first on a
frame (its outputs then cold in the cache) alternates from round to round. Prints median, p95 and spread
(min..max) of all calls (n = frames x rounds), the CPU and the load average. With
``--profile``, the current merge's cProfile instead (heaviest 25 functions by own time).
Goal (issue 29): median at most 3 ms at one thread.
"""
from __future__ import annotations

import argparse
import cProfile
import importlib.util
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.model import Segmenter, postprocess
from vps_ros.pipeline import DEFAULT_MODEL
from vps_ros.resources import model_path

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("segment_map", "class_ids", "scores", "is_thing", "boxes", "areas", "embeddings")


def module_at(revision: str):
    """vps_ros/model/postprocess.py at a git revision, imported as a sibling module (so
    its relative imports resolve to the current package)."""
    source = subprocess.run(["git", "show", f"{revision}:vps_ros/model/postprocess.py"],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="bench_merge_"))
    path = folder / "postprocess_baseline.py"
    path.write_text(source)
    name = "vps_ros.model._postprocess_baseline"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def cpu_line() -> str:
    model = platform.processor() or "unknown CPU"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model}, {os.cpu_count()} CPUs, {'/'.join(simd) or 'no AVX2'}"


def describe(ms: list[float]) -> str:
    return (f"median {statistics.median(ms):5.2f} ms  p95 {np.percentile(ms, 95):5.2f} ms  "
            f"spread {min(ms):.2f}..{max(ms):.2f} ms  (n={len(ms)})")


def same(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) and
               getattr(a, f).dtype == getattr(b, f).dtype for f in FIELDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="HEAD", help="git revision to compare with")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    segmenter = Segmenter.from_checkpoint(model_path(DEFAULT_MODEL))
    sequences = max(1, args.frames // 2)
    images = np.stack([f.image for f in SyntheticDataset("test", sequences, 2)])[:args.frames]
    out = segmenter.predict(images)
    calls = [(out["class_logits"][i], out["mask_logits"][i], out["embeddings"][i],
              segmenter.classes.is_thing_lut, segmenter.input_size, segmenter.postprocess)
             for i in range(len(images))]
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.rounds):
            for call in calls:
                postprocess.merge_masks(*call)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return
    baseline = module_at(args.baseline)
    merges = {f"baseline ({args.baseline})": baseline.merge_masks,
              "current": postprocess.merge_masks}
    for call in calls:
        if not same(baseline.merge_masks(*call), postprocess.merge_masks(*call)):
            raise SystemExit("the current merge differs from the baseline's segments")
    segments = [postprocess.merge_masks(*call).num_segments for call in calls]
    load_before = os.getloadavg()
    ms: dict[str, list[float]] = {name: [] for name in merges}
    for round_ in range(args.rounds):
        for call in calls:
            # Which merge meets a frame's outputs first (cold in the cache) alternates.
            for name, merge in list(merges.items())[::1 if round_ % 2 else -1]:
                start = time.perf_counter()
                merge(*call)
                ms[name].append((time.perf_counter() - start) * 1e3)
    load_after = os.getloadavg()
    print(f"{cpu_line()}; {args.threads} thread(s); load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    print(f"merge_masks on the shipped model's outputs for {len(calls)} test frames "
          f"({min(segments)}..{max(segments)} segments), {args.rounds} rounds in turns:")
    base = statistics.median(next(iter(ms.values())))
    for name, values in ms.items():
        print(f"  {name:24s} {describe(values)}  x{base / statistics.median(values):.2f}")


if __name__ == "__main__":
    main()
