"""Fleet replay speed: drives per second of ``vps-ros replay`` over 8 drives in this
process, in 2 worker processes and as Ray tasks on a local cluster of 2 CPUs, the
speed-up of each over one process, and the driver's memory against the number of
drives.

The drives are synthetic validation sequences written by the data CLI's bag writer
(default 8 drives of 20 frames of 256 x 512, ground truth on every frame), replayed
offline with the shipped model and config/perception.yaml (one torch thread per
drive). Each executor's wall time includes starting its workers (spawned processes,
or the Ray cluster), loading the model in each, and merging the statistics; the
script checks that every executor gives the same totals. Driver memory is Python's
traced peak (tracemalloc) in this process: during the 2-process run, and while merging
N copies of the drives' result files (N = 8 and 512): the merge reads one file at a
time, so its peak should not grow with N.

Ray stays on loopback only inside the loopback namespace, so run it as

    flock /tmp/vps_bench.lock bash scripts/in_loopback_netns.sh \\
        python benchmarks/bench_fleet.py [--drives 8] [--frames 20] [--rounds 1] [--no-ray]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import tracemalloc
from pathlib import Path

from vps_ros.data import bags
from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.replay.cameras import cameras_of
from vps_ros.replay.fleet import DRIVES_DIR, FleetOptions, name_drives, run_fleet
from vps_ros.replay.fleet_totals import merge_drives
from vps_ros.replay.runner import ReplayOptions

TOTALS = ("VPQ", "VPQ_windows", "STQ", "AQ", "SQ", "per_class", "num_frames", "num_tracks")


def _merge_peak(source: Path, copies: int, root: Path) -> float:
    """Peak traced MiB while merging ``copies`` drive files (copies of the real ones)."""
    folder = root / f"merge{copies}" / DRIVES_DIR
    folder.mkdir(parents=True)
    files = sorted(source.glob("*.json"))
    drives, rows = {}, {}
    for k in range(copies):
        name = f"d{k:05d}"
        shutil.copy(files[k % len(files)], folder / f"{name}.json")
        drives[name], rows[name] = folder / name, {"error": None}
    tracemalloc.start()
    merge_drives(folder, drives, rows)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drives", type=int, default=8)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--model", default="", help="checkpoint (default models/default.pt)")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray executor")
    args = parser.parse_args()

    executors = {"1 process": {}, "2 processes": {"workers": 2}}
    if not args.no_ray:
        executors["Ray, 2 CPUs"] = {"workers": 2, "ray": "local"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset = SyntheticDataset("val", args.drives, args.frames, args.height, args.width)
        paths = bags.write(dataset, root / "bags")
        assert len(name_drives(paths)) == args.drives
        cameras = cameras_of([bags.IMAGE_TOPIC], [bags.GT_TOPIC])
        rates: dict[str, list[float]] = {name: [] for name in executors}
        totals, driver_peak = {}, None
        for round_ in range(args.rounds):
            for name, given in executors.items():
                out = root / f"{name.replace(' ', '_')}{round_}"
                options = ReplayOptions(paths[0], cameras, out, model=args.model, video=False,
                                        progress=False)
                traced = name == "2 processes"
                if traced:
                    tracemalloc.start()
                document, failed = run_fleet(FleetOptions(paths, options, **given))
                if traced:
                    driver_peak = tracemalloc.get_traced_memory()[1] / 2**20
                    tracemalloc.stop()
                assert failed == 0, document["drives"]
                totals[name] = {k: document[k] for k in TOTALS}
                rates[name].append(args.drives / document["wall_s"])
                busy = sum(row["wall_s"] for row in document["drives"])
                print(f"round {round_ + 1}, {name}: {args.drives} drives in "
                      f"{document['wall_s']:.1f} s = {rates[name][-1]:.3f} drives/s "
                      f"({document['frames'] / document['wall_s']:.1f} frames/s; "
                      f"{busy / args.drives:.1f} s per drive inside its worker)", flush=True)
        same = all(t == totals["1 process"] for t in totals.values())
        peaks = {n: _merge_peak(root / "1_process0" / DRIVES_DIR, n, root) for n in (8, 512)}

    base = statistics.median(rates["1 process"])
    print(f"\n{args.drives} drives of {args.frames} frames ({args.width}x{args.height}), "
          f"{args.rounds} round(s); wall time includes starting the workers:")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:12s} {rate:.3f} drives/s (spread {min(values):.3f}..{max(values):.3f})"
              f"  speed-up x{rate / base:.2f}  ~{1000 / rate / 3600:.2f} h per 1000 such drives")
    print(f"totals identical across executors: {'yes' if same else 'NO'}")
    print(f"driver memory: traced peak {driver_peak:.1f} MiB during the 2-process run; merging "
          + ", ".join(f"{n} drive files {p:.2f} MiB" for n, p in peaks.items()))


if __name__ == "__main__":
    main()
