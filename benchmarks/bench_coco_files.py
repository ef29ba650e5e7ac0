"""COCO panoptic files to result, files/s: `vps-ros eval --format coco-panoptic` (the
command, called in the child process) and hotcoco (Rust, requirements/dev.txt) on the
same files, side by side; hotcoco also with glibc's allocator tuned as ours.

``--images`` generated pairs of 640x480 (COCO val size) in COCO's layout (JSON + PNG
folder; 133 categories with COCO's non-contiguous ids, 80 things; ~30 segments per
image, some crowd), predictions shifted and relabelled. The PNGs are written by
Pillow at its default settings, as panopticapi's converters write COCO's (``--writer
opencv``: OpenCV's defaults, another deflate stream and filters). Each measurement runs
in a fresh process (hotcoco's thread pool is sized once per process, by
RAYON_NUM_THREADS) and times reading + scoring, not the interpreter start; the tools
alternate (ABC CBA) in the repeats, for each thread count, and their PQ must agree.
The video readers' files/s: benchmarks/bench_metrics.py.

    flock /tmp/vps_bench.lock python benchmarks/bench_coco_files.py [--images 300]
        [--repeats 5] [--threads 1 2] [--writer pil|opencv]
"""
from __future__ import annotations

import argparse
import contextlib
import io
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
from PIL import Image

H, W, SEGMENTS = 480, 640, 30
CATEGORY_IDS = [i for i in range(1, 201) if i % 3][:133]
CATEGORIES = [{"id": c, "name": f"c{c}", "isthing": int(k < 80)}
              for k, c in enumerate(CATEGORY_IDS)]


def _png(path: Path, ids: np.ndarray, writer: str) -> None:
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    if writer == "pil":
        Image.fromarray(rgb).save(path)
    else:
        cv2.imwrite(str(path), rgb[..., ::-1])


def write_coco(root: Path, images: int, seed: int = 0, writer: str = "pil") -> None:
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
            _png(root / side / name, m, writer)
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
    """Time one evaluation in this process; print JSON (seconds, CPU seconds of all its
    threads, PQ)."""
    if which == "hotcoco":
        from hotcoco.panoptic import PanopticEval
        start, cpu = time.perf_counter(), time.process_time()
        e = PanopticEval(str(root / "gt.json"), str(root / "pred.json"),
                         gt_folder=str(root / "gt"), pred_folder=str(root / "pred"))
        e.evaluate()
        pq = e.results()["All"]["pq"]
    else:
        import vps_ros.commands.eval  # noqa: F401  imported before the clock, as hotcoco
        from vps_ros import cli
        out = root.parent / f"result-{os.getpid()}.json"
        start, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["eval", "--format", "coco-panoptic", "--gt", str(root / "gt.json"),
                             "--gt-folder", str(root / "gt"), "--pred", str(root / "pred.json"),
                             "--pred-folder", str(root / "pred"), "--threads", str(threads),
                             "--json", str(out)])
        assert code == 0
        pq = json.loads(out.read_text())["All"]["pq"]
    print(json.dumps({"seconds": time.perf_counter() - start,
                      "cpu": time.process_time() - cpu, "pq": pq}))


# hotcoco once more with glibc's thresholds fixed as `vps-ros eval` fixes them in its own
# process (vps_ros/allocator.py), here through glibc's environment variables: what the
# allocator alone is worth to either tool.
TUNED = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}
TOOLS = ("vps_ros", "hotcoco", "hotcoco+malloc")


def run_child(which: str, root: Path, threads: int) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS="1")
    if which == "hotcoco+malloc":
        which = "hotcoco"
        env.update(TUNED)
    out = subprocess.run([sys.executable, __file__, "--child", which, str(root), str(threads)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):8.1f}  (min {min(values):.1f}, "
            f"max {max(values):.1f}, n={len(values)})")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--writer", choices=("pil", "opencv"), default="pil")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_coco(root / "coco", args.images, writer=args.writer)
        from vps_ros.data.formats.png import decoder_name
        print(f"COCO panoptic: {args.images} image pairs of {W}x{H}, ~{SEGMENTS} segments, "
              f"{len(CATEGORIES)} categories, PNGs written by {args.writer}; decoder "
              f"{decoder_name()}; {args.repeats} paired repeats; load average "
              f"{os.getloadavg()[0]:.1f}")
        for threads in args.threads:
            rates: dict[str, list[float]] = {which: [] for which in TOOLS}
            cpu: dict[str, list[float]] = {which: [] for which in TOOLS}
            pq = {}
            for repeat in range(args.repeats):
                for which in TOOLS[::1 if repeat % 2 == 0 else -1]:
                    r = run_child(which, root / "coco", threads)
                    rates[which].append(args.images / r["seconds"])
                    cpu[which].append(1e3 * r["cpu"] / args.images)
                    pq[which] = r["pq"]
            assert max(pq.values()) - min(pq.values()) < 1e-9, pq
            for which, values in rates.items():
                print(f"{threads} thread(s) {which:14s} files/s {spread(values)}; CPU ms per "
                      f"pair {statistics.median(cpu[which]):.2f} (min {min(cpu[which]):.2f})")
            ratios = [a / b for a, b in zip(rates["vps_ros"], rates["hotcoco"])]
            print(f"{threads} thread(s) vps_ros/hotcoco (paired)  "
                  f"median {statistics.median(ratios):.2f}x (min {min(ratios):.2f}, "
                  f"max {max(ratios):.2f}); PQ {pq['vps_ros']:.6f} both")
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
