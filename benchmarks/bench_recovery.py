"""Recovery of drives cut short, and the speed of ``vps-ros bag repair``.

1. The demo drive (``vps-ros synth OUT --split test --format rosbag2 --sequences 1
   --frames 100``, 256 x 512, ground truth on every frame; as ``scripts/demo.sh`` makes
   it), its storage file cut at 25 / 50 / 75 % of its size and metadata.yaml removed (what
   a killed recorder leaves): frames recovered by ``vps_ros.data.bags.frames.read_frames`` of
   frames written, and for mcap the frames whose chunk lies wholly before the cut (the
   most that can be recovered, from the complete file's chunk index).
2. ``vps-ros bag repair`` (in this process) of a longer drive without metadata.yaml and
   cut at 90 %: seconds per GB of input, per round, median and spread.

    python benchmarks/bench_recovery.py [--repair-frames 300] [--rounds 3]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mcap.reader import make_reader

from vps_ros.data import bags
from vps_ros.commands.bag import repair
from vps_ros.errors import DataError

STORAGES = ("mcap", "sqlite3")


def synth(root: Path, frames: int, storage: str) -> Path:
    subprocess.run([sys.executable, "-m", "vps_ros.cli", "synth", str(root), "--split", "test",
                    "--format", "rosbag2", "--sequences", "1", "--frames", str(frames),
                    "--storage", storage], check=True, capture_output=True)
    return root / "test" / "0000"


def data_file(bag: Path) -> Path:
    return next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))


def cut(bag: Path, target: Path, fraction: float) -> Path:
    """``bag`` as a killed recorder leaves it: storage file cut, no metadata.yaml."""
    target.mkdir()
    source = data_file(bag)
    size = int(source.stat().st_size * fraction)
    with source.open("rb") as f:
        (target / source.name).write_bytes(f.read(size))
    return target


def whole_chunks_before(bag: Path, offset: int) -> int:
    with data_file(bag).open("rb") as f:
        chunks = make_reader(f).get_summary().chunk_indexes
    return sum(c.chunk_start_offset + c.chunk_length <= offset for c in chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="demo drive length")
    parser.add_argument("--repair-frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for storage in STORAGES:
            bag = synth(root / f"demo_{storage}", args.frames, storage)
            size = data_file(bag).stat().st_size
            for percent in (25, 50, 75):
                target = cut(bag, root / f"{storage}_{percent}", percent / 100)
                started = time.perf_counter()
                try:
                    recovered = sum(1 for _ in bags.read_frames(target))
                except DataError as exc:
                    recovered = f"0 ({exc})"
                seconds = time.perf_counter() - started
                bound = (f", {whole_chunks_before(bag, int(size * percent / 100))} whole on "
                         "disk" if storage == "mcap" else "")
                print(f"demo drive {storage} ({size / 2**20:.1f} MiB) cut at {percent} %: "
                      f"{recovered} of {args.frames} frames recovered{bound} "
                      f"(read in {seconds:.2f} s)", flush=True)
        for storage in STORAGES:
            bag = synth(root / f"long_{storage}", args.repair_frames, storage)
            target = cut(bag, root / f"long_{storage}_cut", 0.9)
            size = data_file(target).stat().st_size
            per_gb = []
            for round_ in range(args.rounds):
                out = root / f"repaired_{storage}_{round_}"
                started = time.perf_counter()
                count = repair(target, out)
                seconds = time.perf_counter() - started
                per_gb.append(seconds / (size / 2**30))
                shutil.rmtree(out)
                print(f"repair {storage} round {round_ + 1}: {size / 2**20:.0f} MiB, {count} "
                      f"messages in {seconds:.2f} s = {per_gb[-1]:.1f} s/GB", flush=True)
            print(f"bag repair {storage}: median {statistics.median(per_gb):.1f} s per GB "
                  f"(spread {min(per_gb):.1f}..{max(per_gb):.1f}, {args.rounds} rounds of "
                  f"{size / 2**20:.0f} MiB)", flush=True)


if __name__ == "__main__":
    main()
