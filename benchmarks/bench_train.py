"""Training data throughput and memory (docs/training.md, "Measured").

1. Data-loader frames/s per worker at 512x1024 and 1024x2048: KITTI-STEP folders written
   from the synthetic generator (PNG decode, segment split, augmentation, targets: the
   real reader's path), read through the training DataLoader with 1 and 2 workers,
   against the CPU step time of the default network (config/train_synthetic.yaml's
   model) on a batch of the same crop; from these, the workers a step needs.
2. Peak resident memory of the training process and of its workers while streaming
   100 and 1000 frames (stream), and with the frames held in memory (FrameBank, the
   fallback of iterate-only sources) for comparison. Each case runs in its own process.

    flock /tmp/vps_bench.lock python benchmarks/bench_train.py [--quick]

GPU figures (steps/s of the KITTI-STEP recipe, scaling over GPUs) need a GPU machine:
not measured here.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vps_ros.config import from_mapping, to_mapping
from vps_ros.data.formats.datasets import open_dataset, write_dataset
from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.model.network import KMaXNet
from vps_ros.resources import config_path
from vps_ros.train.config import TrainConfig, load_train_config
from vps_ros.train.frames import FrameBank, annotated, train_frames
from vps_ros.train.losses import Criterion
from vps_ros.train.stream import PairDataset, Shard, make_loader


def write_folder(root: Path, sequences: int, frames: int, height: int, width: int) -> Path:
    if not (root / "images").is_dir():
        write_dataset("kitti-step", SyntheticDataset("train", sequences, frames, height, width),
                      root, split="train")
    return root


def config_for(folder: Path, size: tuple[int, int], pairs: int, steps: int, workers: int
               ) -> TrainConfig:
    base = load_train_config(config_path("train_synthetic.yaml"))
    model = {**to_mapping(base.model), "input_height": size[0], "input_width": size[1]}
    return from_mapping(TrainConfig, {
        "threads": 1, "model": model, "tensorboard": False,
        "data": {"train": {"type": "kitti-step", "path": str(folder), "split": "train"}},
        "curriculum": [{"steps": steps, "crop": list(size), "pairs": pairs,
                        "scale": [0.75, 1.25]}],
        "loader": {"workers": workers, "pin_memory": False}}, "bench")


def loader_rate(config: TrainConfig, steps: int) -> float:
    """Frames/s of the loader alone (after its first batch: worker start-up excluded)."""
    reader = open_dataset("kitti-step", config.data.train.path, split="train")
    dataset = PairDataset(train_frames(reader, config.model.input_size), config)
    batches = iter(make_loader(dataset, Shard(), 0, steps, pin_memory=False))
    next(batches)
    start = time.perf_counter()
    frames = sum(len(batch) for batch in batches)
    return frames / (time.perf_counter() - start)


def step_seconds(config: TrainConfig, repeats: int) -> list[float]:
    """CPU seconds of one optimizer step (forward, loss, backward) of the network."""
    torch.set_num_threads(2)
    reader = open_dataset("kitti-step", config.data.train.path, split="train")
    dataset = PairDataset(train_frames(reader, config.model.input_size), config)
    batch = next(iter(make_loader(dataset, Shard(), 0, 1, pin_memory=False)))
    net = KMaXNet(config.model, len(reader.classes)).train()
    criterion = Criterion(config.loss, len(reader.classes))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    times = []
    for _ in range(repeats + 1):  # the first step (library start-up) is not counted
        start = time.perf_counter()
        loss, _ = criterion(net(batch.images, aux=True), batch.targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times[1:]


def memory_case(folder: str, mode: str, steps: int) -> dict:
    """Run in a child process: stream or hold the folder's frames, draw ``steps`` batches."""
    config = config_for(Path(folder), (128, 256), 2, steps, 2 if mode == "stream" else 0)
    reader = open_dataset("kitti-step", folder, split="train")
    if mode == "stream":
        frames = train_frames(reader, config.model.input_size)
    else:
        frames = FrameBank(annotated(reader), reader.classes, reader.label_divisor,
                           config.model.input_size)
    batches = iter(make_loader(PairDataset(frames, config), Shard(), 0, steps, pin_memory=False))
    count = sum(len(b) for b in batches)
    workers = [peak_rss_mb(w.pid) for w in getattr(batches, "_workers", [])]
    return {"frames_in_dataset": len(frames), "batches_frames": count,
            "peak_rss_mb": peak_rss_mb("self"),
            "peak_worker_rss_mb": max(workers) if workers else None}


def peak_rss_mb(pid) -> float:
    """VmHWM of a process: its own peak (ru_maxrss would carry the peak of the process
    that started it across fork and exec)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_train")
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--parts", default="loader,memory",
                        help="comma-separated: loader (throughput), memory (peak RSS)")
    parser.add_argument("--memory-case", nargs=3, metavar=("FOLDER", "MODE", "STEPS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_case:
        folder, mode, steps = args.memory_case
        print(json.dumps(memory_case(folder, mode, int(steps))))
        return
    steps = 4 if args.quick else 12
    parts = args.parts.split(",")
    if "loader" in parts:
        loader_figures(args.work, steps, args.quick)
    if "memory" in parts:
        memory_figures(args.work, 10 if args.quick else 50)


def loader_figures(work: Path, steps: int, quick: bool) -> None:
    print("# data loader vs step time (CPU; pairs of 2 frames, 1 pair per batch)")
    for size in ((512, 1024), (1024, 2048)):
        folder = write_folder(work / f"kitti_{size[0]}x{size[1]}", 2, 4, *size)
        rates = {w: loader_rate(config_for(folder, size, 1, steps, w), steps) for w in (1, 2)}
        times = step_seconds(config_for(folder, size, 1, 1, 0), 2 if quick else 3)
        step = statistics.median(times)
        per_worker = rates[1]
        print(f"{size[0]}x{size[1]}: loader {rates[1]:.2f} frames/s with 1 worker, "
              f"{rates[2]:.2f} with 2 ({rates[2] / 2:.2f} per worker); default network "
              f"step (2 frames, 2 threads) median {step:.2f} s "
              f"(spread {min(times):.2f}..{max(times):.2f}) = {2 / step:.2f} frames/s; "
              f"workers to keep up: {2 / step / per_worker:.2f}")


def memory_figures(work: Path, mem_steps: int) -> None:
    print("# peak resident memory while streaming (2 workers) vs holding frames (128x256)")
    for frames in (100, 1000):
        folder = write_folder(work / f"kitti_128x256_{frames}", frames // 20, 20, 128, 256)
        for mode in ("stream", "memory"):
            out = subprocess.run([sys.executable, __file__, "--memory-case", str(folder), mode,
                                  str(mem_steps)], capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{frames} frames, {mode}: {result}")


if __name__ == "__main__":
    main()
