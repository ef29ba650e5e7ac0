"""VPQ (windows 1-4) + STQ throughput and peak memory: metric core vs plain reference.

Frames are 1024x2048 with 60 ground-truth segments (Voronoi cells of moving seeds,
so tracks persist), 30-frame sequences; predictions are the ground truth shifted by
a few pixels with id switches, class errors and void. The plain reference
(testkit/metrics_reference.py) stacks each window's frames and runs one np.unique over
it; STQ runs one np.unique per frame.

Peak memory is the peak of Python/numpy allocations (tracemalloc) made while
evaluating; the frames themselves are generated beforehand and not counted.

Then files/s of the dataset readers: Cityscapes-VPS, VIPSeg (its
panomasks and its COCO form) and KITTI-STEP, on 1024x2048 frames of the synthetic
generator written in each format (Cityscapes-VPS and KITTI-STEP by the package's
writers, VIPSeg here); every frame annotated; one thread; with the PNG decoder of
``data/formats/png.py`` and with OpenCV's, in turns.

    flock /tmp/vps_bench.lock python benchmarks/bench_metrics.py [--repeats 5]
        [--frames 30] [--readers-only]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from testkit.metrics_reference import stq_reference, vpq_reference

from vps_ros.data.formats import png
from vps_ros.data.formats.coco_panoptic import encode
from vps_ros.data.formats.datasets import open_panoptic, write_dataset
from vps_ros.data.formats.files import write_label_png
from vps_ros.data.synthetic.dataset import SyntheticDataset
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


def write_vipseg(dataset: SyntheticDataset, root: Path) -> None:
    """Both VIPSeg forms: ``panomasks/<video>/<frame>.png`` (one channel, 16-bit: class + 1
    for stuff, 100 (class + 1) + instance - 1 for things) and ``panoptic.json`` with
    ``panomasksRGB/`` (the COCO video form)."""
    classes, divisor = dataset.classes, dataset.label_divisor
    videos: dict[str, list] = {}
    for frame in dataset:
        semantic, instance = frame.panoptic // divisor, frame.panoptic % divisor
        thing = classes.is_thing_lut[np.clip(semantic, 0, len(classes) - 1)] & (instance > 0)
        mask = np.where(thing, (semantic + 1) * 100 + instance - 1, semantic + 1)
        mask[semantic == classes.void_id] = 0
        name = f"{frame.index:08d}.png"
        write_label_png(root / "panomasks" / frame.sequence / name, mask.astype(np.uint16))
        rgb, segments = encode(frame.panoptic, classes, divisor, name)
        write_label_png(root / "panomasksRGB" / frame.sequence / name, rgb)
        videos.setdefault(frame.sequence, []).append(
            {"file_name": name, "image_id": name[:-4], "segments_info": segments})
    (root / "panoptic.json").write_text(json.dumps({"annotations": [
        {"video_id": video, "annotations": frames} for video, frames in videos.items()]}))


def reader_rates(frames: int, repeats: int) -> None:
    """files/s of each reader, Wuffs (when installed) and OpenCV decoding in turns."""
    dataset = SyntheticDataset("test", num_sequences=1, num_frames=frames, height=1024,
                               width=2048)
    classes = dataset.classes
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_dataset("cityscapes-vps", dataset, root / "cityscapes-vps", annotation_stride=1)
        write_dataset("kitti-step", dataset, root / "kitti-step")
        write_vipseg(dataset, root / "vipseg")
        readers = {
            "Cityscapes-VPS": lambda: open_panoptic("cityscapes-vps", root / "cityscapes-vps",
                                                    classes, 1000),
            "VIPSeg panomasks": lambda: open_panoptic("vipseg", root / "vipseg", classes, 1000),
            "VIPSeg COCO form": lambda: open_panoptic("vipseg", root / "vipseg" / "panoptic.json",
                                                      classes, 1000),
            "KITTI-STEP": lambda: open_panoptic("kitti-step", root / "kitti-step", classes, 1000),
        }
        wuffs = png.ImageDecoder
        decoders = {"wuffs": wuffs, "opencv": None} if wuffs is not None else {"opencv": None}
        print(f"dataset readers: {frames} annotated frames of 2048x1024 each, one thread, "
              f"{repeats} repeats per decoder in turns; load average {os.getloadavg()[0]:.1f}")
        for name, open_reader in readers.items():
            rates: dict[str, list[float]] = {d: [] for d in decoders}
            for _ in range(repeats):
                for decoder, cls in decoders.items():
                    png.ImageDecoder = cls   # the extra installed or not
                    source = open_reader()
                    start, count = time.perf_counter(), 0
                    for sequence in source.sequences():
                        for _ in source.frames(sequence):
                            count += 1
                    rates[decoder].append(count / (time.perf_counter() - start))
            png.ImageDecoder = wuffs
            for decoder, values in rates.items():
                print(f"{name:17s} {decoder:6s} files/s {spread(values)}")
        print(f"load average after: {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--reader-frames", type=int, default=10)
    parser.add_argument("--readers-only", action="store_true")
    args = parser.parse_args()
    if args.readers_only:
        reader_rates(args.reader_frames, args.repeats)
        return
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
    reader_rates(args.reader_frames, args.repeats)


if __name__ == "__main__":
    main()
