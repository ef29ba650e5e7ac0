"""Panoptic files to result, files/s: `vps-ros eval`'s readers and metric core, and
hotcoco (Rust, requirements/dev.txt) on the same COCO panoptic files, side by side.

COCO part: ``--images`` generated pairs of 640x480 (COCO val size) in COCO's layout
(JSON + PNG folder; 133 categories with COCO's non-contiguous ids, 80 things; ~30
segments per image, some crowd), predictions shifted and relabelled. Each measurement
runs in a fresh process (hotcoco's thread pool is sized once per process, by
RAYON_NUM_THREADS) and times reading + scoring, not the interpreter start; ours and
hotcoco alternate in every repeat, for each thread count, and their PQ must agree.

Video part: files/s of the Cityscapes-VPS and KITTI-STEP readers (frames written by
the package's writers at 1024x2048), one thread.

    flock /tmp/vps_bench.lock python benchmarks/bench_coco_files.py [--images 300]
        [--repeats 5] [--threads 1 2]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

H, W, SEGMENTS = 480, 640, 30
CATEGORY_IDS = [i for i in range(1, 201) if i % 3][:133]
CATEGORIES = [{"id": c, "name": f"c{c}", "isthing": int(k < 80)}
              for k, c in enumerate(CATEGORY_IDS)]


def _png(path: Path, ids: np.ndarray) -> None:
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    cv2.imwrite(str(path), rgb[..., ::-1])


def write_coco(root: Path, images: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:H:4, 0:W:4]
    docs = {"gt": [], "pred": []}
    for side in docs:
        (root / side).mkdir(parents=True)
    for image in range(images):
        centres = rng.uniform([0, 0], [H, W], (SEGMENTS, 2))
        cell = np.argmin((ys[..., None] - centres[:, 0]) ** 2
                         + (xs[..., None] - centres[:, 1]) ** 2, -1)
        cell = np.kron(cell, np.ones((4, 4), np.int64))
        ids = rng.choice(np.arange(1, 256 ** 3), SEGMENTS, replace=False)
        category = rng.choice(CATEGORY_IDS, SEGMENTS)
        gt = ids[cell]
        gt[:12] = 0
        pred_cat = np.where(rng.random(SEGMENTS) < 0.1, rng.choice(CATEGORY_IDS, SEGMENTS),
                            category)
        pred = np.roll(ids[cell], int(rng.integers(-8, 9)), axis=1)
        pred[-10:] = 0
        name = f"{image:012d}.png"
        for side, m, cats in (("gt", gt, category), ("pred", pred, pred_cat)):
            _png(root / side / name, m)
            values, counts = np.unique(m, return_counts=True)
            row = {int(v): k for k, v in enumerate(ids)}
            segs = [{"id": int(v), "category_id": int(cats[row[int(v)]]),
                     "iscrowd": int(side == "gt" and rng.random() < 0.05), "area": int(a)}
                    for v, a in zip(values, counts) if v]
            docs[side].append({"image_id": image, "file_name": name, "segments_info": segs})
    for side, annotations in docs.items():
        (root / f"{side}.json").write_text(json.dumps(
            {"annotations": annotations, "categories": CATEGORIES,
             "images": [{"id": a["image_id"], "file_name": a["file_name"], "height": H,
                         "width": W} for a in annotations]}))


def child(which: str, root: Path, threads: int) -> None:
    """Time one evaluation in this process; print JSON (seconds, PQ)."""
    if which == "hotcoco":
        from hotcoco.panoptic import PanopticEval
        start = time.perf_counter()
        e = PanopticEval(str(root / "gt.json"), str(root / "pred.json"),
                         gt_folder=str(root / "gt"), pred_folder=str(root / "pred"))
        e.evaluate()
        pq = e.results()["All"]["pq"]
    else:
        from vps_ros.data.formats.coco_images import CocoPanopticPairs
        from vps_ros.metrics.coco import CategoryIndex, coco_result, score_images
        start = time.perf_counter()
        files = CocoPanopticPairs(root / "gt.json", root / "gt", root / "pred.json",
                                  root / "pred")
        index = CategoryIndex(files.categories)
        pq = coco_result(score_images(files.overlaps, len(files), index, threads),
                         index)["All"]["pq"]
    print(json.dumps({"seconds": time.perf_counter() - start, "pq": pq}))


def run_child(which: str, root: Path, threads: int) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, __file__, "--child", which, str(root), str(threads)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):8.1f}  (min {min(values):.1f}, "
            f"max {max(values):.1f}, n={len(values)})")


def video_readers(root: Path, repeats: int) -> None:
    from vps_ros.data.formats.datasets import open_panoptic, write_dataset
    from vps_ros.data.synthetic.dataset import SyntheticDataset
    dataset = SyntheticDataset("test", num_sequences=1, num_frames=10, height=1024, width=2048)
    for fmt in ("cityscapes-vps", "kitti-step"):
        folder = root / fmt
        write_dataset(fmt, dataset, folder)
        source = open_panoptic(fmt, folder, dataset.classes, 1000)
        rates = []
        for _ in range(repeats):
            start, count = time.perf_counter(), 0
            for sequence in source.sequences():
                for _ in source.frames(sequence):
                    count += 1
            rates.append(count / (time.perf_counter() - start))
        print(f"{fmt:15s} reader, {count} frames 2048x1024, 1 thread: files/s {spread(rates)}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--skip-video", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_coco(root / "coco", args.images)
        print(f"COCO panoptic: {args.images} image pairs of {W}x{H}, ~{SEGMENTS} segments, "
              f"{len(CATEGORIES)} categories; {args.repeats} paired repeats")
        for threads in args.threads:
            rates = {"vps_ros": [], "hotcoco": []}
            pq = {}
            for _ in range(args.repeats):
                for which in ("vps_ros", "hotcoco"):
                    r = run_child(which, root / "coco", threads)
                    rates[which].append(args.images / r["seconds"])
                    pq[which] = r["pq"]
            assert abs(pq["vps_ros"] - pq["hotcoco"]) < 1e-9, pq
            for which, values in rates.items():
                print(f"{threads} thread(s) {which:8s} files/s {spread(values)}")
            ratios = [a / b for a, b in zip(rates["vps_ros"], rates["hotcoco"])]
            print(f"{threads} thread(s) vps_ros/hotcoco (paired)  "
                  f"median {statistics.median(ratios):.2f}x (min {min(ratios):.2f}, "
                  f"max {max(ratios):.2f}); PQ {pq['vps_ros']:.6f} both")
        if not args.skip_video:
            video_readers(root, args.repeats)


if __name__ == "__main__":
    main()
