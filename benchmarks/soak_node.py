"""perception_node for a long run: RSS and latency over time while camera sizes change.

One node (parameters from config/perception.yaml, on loopback, a domain id of its own)
and this process as the camera: synthetic rgb8 frames at ``--rate``, the frame size
stepping through ``--sizes`` every ``--switch-s`` seconds (each size a new network input
for the node: the engine and export bounds of docs/reliability.md are what keep memory
flat). Every ``--sample-s`` seconds the node's RSS and the latencies of that interval
(image stamp -> panoptic receipt, one clock) are recorded; the node's /diagnostics give
the frames it dropped. Writes ``soak.json`` and ``soak.png`` (RSS and latency p50/p95
against time) into ``--out`` and prints one summary line.

    python benchmarks/soak_node.py [--minutes 30] [--rate 30] [--out soak_out]
                                   [--sizes 256x512 480x640 360x640 720x1280]
                                   [--switch-s 60] [--model PATH] [--backend NAME]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_node import default_checkpoint, rss_mib, wait_until

STARTUP_S = 300.0


def parse_size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.split("x"))
    return height, width


def camera_frames(sizes: list[tuple[int, int]]) -> dict[tuple[int, int], list]:
    """Twenty synthetic frames per size, as message fields (converted once, not timed)."""
    import cv2

    from vps_ros.data.synthetic.dataset import SyntheticDataset
    from vps_ros.imgmsg import from_array
    base = [f.image for f in SyntheticDataset("val", 1, 20, 256, 512)]
    return {(h, w): [from_array(cv2.resize(rgb, (w, h)), "rgb8") for rgb in base]
            for h, w in sizes}


def soak(args: argparse.Namespace, checkpoint: Path, log_path: Path) -> dict:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from vps_ros.resources import config_path
    from vps_ros.ros.node_config import node_command

    sizes = [parse_size(s) for s in args.sizes]
    frames = camera_frames(sizes)
    overrides = {"model": str(checkpoint)}
    if args.backend:
        overrides["backend"] = args.backend
    log = open(log_path, "w")
    node_process = subprocess.Popen(node_command(config_path("perception.yaml"), overrides),
                                    env=dict(os.environ, PYTHONUNBUFFERED="1"),
                                    stdout=log, stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node("soak_camera")
    latencies: list[float] = []
    diagnostics: dict[str, dict] = {}

    def on_panoptic(msg: Image) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latencies.append((time.time_ns() - stamp) / 1e6)

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            diagnostics[status.name.rsplit(": ", 1)[-1]] = {kv.key: kv.value
                                                            for kv in status.values}

    pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
    sub = node.create_subscription(Image, "panoptic", on_panoptic,
                                   QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    try:
        deadline = time.monotonic() + STARTUP_S
        while not (pub.get_subscription_count() and sub.get_publisher_count()):
            if time.monotonic() > deadline or node_process.poll() is not None:
                raise SystemExit(f"the node did not come up; its log: {log_path}")
            rclpy.spin_once(node, timeout_sec=0.05)
        samples, sent = [], 0
        period, start = 1.0 / args.rate, time.monotonic()
        end, next_sample = start + args.minutes * 60, start + args.sample_s
        while time.monotonic() < end:
            wait_until(node, start + sent * period)
            elapsed = time.monotonic() - start
            size = sizes[int(elapsed // args.switch_s) % len(sizes)]
            fields = frames[size][sent % len(frames[size])]
            msg = Image(height=fields.height, width=fields.width, encoding=fields.encoding,
                        step=fields.step)
            msg.data = fields.data
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(),
                                                                    1_000_000_000)
            pub.publish(msg)
            sent += 1
            if time.monotonic() >= next_sample:
                interval, latencies[:] = list(latencies), []
                samples.append(sample(elapsed, size, node_process.pid, interval))
                next_sample += args.sample_s
        wait_until(node, time.monotonic() + 3.0)
        camera = diagnostics.get("camera", {})
        return {"sent": sent, "rate_hz": args.rate, "minutes": args.minutes,
                "sizes": args.sizes, "switch_s": args.switch_s, "samples": samples,
                "frames_received": int(camera.get("frames received", "0")),
                "dropped": int(camera.get("frames dropped", "0")),
                "backend": diagnostics.get("model", {}).get("backend", "?")}
    finally:
        rclpy.try_shutdown()
        node_process.terminate()
        node_process.wait(timeout=30)
        log.close()


def sample(elapsed: float, size: tuple[int, int], pid: int, interval: list[float]) -> dict:
    def pct(q: float) -> float | None:
        return float(np.percentile(interval, q)) if interval else None
    return {"t_s": round(elapsed, 1), "size": f"{size[0]}x{size[1]}", "rss_mib": rss_mib(pid),
            "outputs": len(interval), "p50_ms": pct(50), "p95_ms": pct(95),
            "max_ms": max(interval) if interval else None}


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    samples = result["samples"]
    minutes = [s["t_s"] / 60 for s in samples]
    fig, (rss_ax, lat_ax) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    rss_ax.plot(minutes, [s["rss_mib"] for s in samples], color="tab:blue")
    rss_ax.set_ylabel("node RSS (MiB)")
    for key, colour in (("p50_ms", "tab:green"), ("p95_ms", "tab:orange")):
        lat_ax.plot(minutes, [s[key] if s[key] is not None else np.nan for s in samples],
                    color=colour, label=key.replace("_ms", ""))
    lat_ax.set_ylabel("latency (ms)")
    lat_ax.set_xlabel("minutes")
    lat_ax.legend()
    fig.suptitle(f"perception_node soak: {result['rate_hz']:g} Hz, sizes "
                 f"{' '.join(result['sizes'])} every {result['switch_s']:g} s")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(result: dict) -> str:
    samples = result["samples"]
    p50 = [s["p50_ms"] for s in samples if s["p50_ms"] is not None]
    worst = [s["max_ms"] for s in samples if s["max_ms"] is not None]
    p95 = [s["p95_ms"] for s in samples if s["p95_ms"] is not None]
    return (f"{result['minutes']:g} min at {result['rate_hz']:g} Hz, backend "
            f"{result['backend']}: sent {result['sent']}, node received "
            f"{result['frames_received']}, dropped {result['dropped']}; RSS "
            f"{samples[0]['rss_mib']:.0f} MiB at {samples[0]['t_s']:.0f} s -> "
            f"{samples[-1]['rss_mib']:.0f} MiB at {samples[-1]['t_s']:.0f} s (max "
            f"{max(s['rss_mib'] for s in samples):.0f}); latency p50 of intervals median "
            f"{np.median(p50):.0f} ms, p95 median {np.median(p95):.0f} ms, max "
            f"{max(worst):.0f} ms; load average {os.getloadavg()[0]:.1f} at end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--sizes", nargs="+", default=["256x512", "480x640", "360x640",
                                                       "720x1280"])
    parser.add_argument("--switch-s", type=float, default=60.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--model", type=Path, help="checkpoint (default: models/default.pt)")
    parser.add_argument("--backend", help="the node's backend parameter")
    parser.add_argument("--out", type=Path, default=Path("soak_out"))
    args = parser.parse_args()
    for size in args.sizes:
        parse_size(size)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ROS_DOMAIN_ID", str(40 + os.getpid() % 50))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.model or default_checkpoint(Path(tmp))[0]
        result = soak(args, checkpoint, args.out / "node.log")
    (args.out / "soak.json").write_text(json.dumps(result, indent=1))
    plot(result, args.out / "soak.png")
    print(summary(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())
