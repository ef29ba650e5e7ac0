"""perception_node end to end over DDS: input rate vs output rate, latency, drops, memory.

Two processes per configuration, both on loopback with a domain id of their own: the
node (started as ``node_command`` starts it, parameters from config/perception.yaml)
and a driver (this script with ``--driver``) that publishes synthetic frames
(rgb8, stamp = publish time) at a fixed rate on every camera, and receives the
panoptic images. With two cameras, the second publishes half a period after the first:
published at the same instant by this one process, a quarter of the 384 KiB frames never
reached the node (best effort; measured here), which fits Fast DDS's default
shared-memory segment of 512 KiB per process holding one such frame at a time.
Latency is image stamp -> panoptic receipt (one clock: one machine). "Dropped" are the
frames the node's queue replaced by newer ones (its /diagnostics counter), "lost" the
frames sent but never received by the node. RSS is the node's resident memory after 200
frames, every 200 frames after, and at the end.

    python benchmarks/bench_node.py [--rates 10 30 100] [--cameras 1 2] [--frames 2000]
                                    [--model PATH] [--threads N] [--compile] [--repeats 1]
                                    [--backend torch|openvino|onnxruntime]
                                    [--size 1080x1920] [--camera-qos reliable]
                                    [--camera-profile] [--camera-transport compressed]
                                    [--viewer] [--dds-transports LARGE_DATA]

``--size`` publishes the frames enlarged to a camera's size (height x width; the node
letterboxes them into the network input and publishes its outputs at that size).
``--camera-transport compressed`` publishes jpeg CompressedImages (quality 90, encoded
once beforehand) and sets the node's ``input_transport``. ``--camera-qos`` is the
driver's publisher QoS (sensor_data: best effort; reliable: as
most camera drivers publish); ``--camera-profile`` gives the driver the package's Fast
DDS profile (config/fastdds.xml, a camera driver configured for large frames), otherwise
it runs on Fast DDS's defaults. The node takes its own defaults (input_qos auto, the
package's profile). ``--viewer`` adds a best-effort subscriber of ``panoptic`` in the
driver (a viewer) and counts what it gets. ``--dds-transports`` sets Fast
DDS's FASTDDS_BUILTIN_TRANSPORTS for both processes (which replaces the profile).

Without ``--model``: models/default.pt if it exists, otherwise a randomly initialised
network of the default architecture (ModelConfig defaults, 256x512): the same
arithmetic per frame as a trained one, except that an untrained network keeps fewer
segments, so tracking and encoding costs are lower.
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

import numpy as np

RSS_EVERY = 200
WARMUP_S = 1.0            # latencies of frames sent in the first second are left out


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def default_checkpoint(folder: Path) -> tuple[Path, str]:
    from vps_ros.resources import model_path
    shipped = model_path("default.pt")
    if shipped.is_file():
        return shipped, "models/default.pt (trained)"
    import torch

    from vps_ros.model import ModelConfig
    from vps_ros.model.checkpoint import save_checkpoint
    from vps_ros.model.network import KMaXNet
    from vps_ros.types import ClassTable
    classes = ClassTable.builtin("synthetic")
    torch.manual_seed(0)
    path = folder / "random_default.pt"
    save_checkpoint(path, KMaXNet(ModelConfig(), len(classes)), classes)
    return path, "random init, default architecture (models/default.pt not present)"


def run_config(rate: float, cameras: int, frames: int, checkpoint: Path, threads: int | None,
               compile: bool, domain: int, folder: Path, size: tuple[int, int],
               transports: str | None, backend: str | None = None,
               camera: dict | None = None, device: str | None = None) -> dict:
    """``camera``: the driver's ``qos``, ``profile`` (bool) and ``viewer`` (bool);
    ``device``: the node's device parameter (default: the params file's)."""
    from vps_ros.resources import config_path
    from vps_ros.ros.dds import PROFILE_NAME, PROFILE_VARIABLES
    from vps_ros.ros.node_config import node_command
    camera = {"qos": "sensor_data", "profile": False, "viewer": False, "transport": "raw",
              **(camera or {})}
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1")
    for name in PROFILE_VARIABLES:
        env.pop(name, None)
    if transports:
        env["FASTDDS_BUILTIN_TRANSPORTS"] = transports
    driver_env = dict(env)
    if camera["profile"]:
        driver_env[PROFILE_VARIABLES[0]] = str(config_path(PROFILE_NAME))
    names = ["cam0", "cam1"][:cameras] if cameras > 1 else [""]
    node_log = open(folder / f"node_{rate}_{cameras}.log", "w")
    overrides = {"model": str(checkpoint), "cameras": names, "compile": compile,
                 "input_transport": camera["transport"]}
    if threads is not None:
        overrides["threads"] = threads
    if backend is not None:
        overrides["backend"] = backend
    if device is not None:
        overrides["device"] = device
    node = subprocess.Popen(node_command(config_path("perception.yaml"), overrides),
                            env=env, stdout=node_log, stderr=subprocess.STDOUT)
    spec = {"rate": rate, "cameras": names, "frames": frames, "node_pid": node.pid,
            "size": size, "qos": camera["qos"], "viewer": camera["viewer"],
            "transport": camera["transport"]}
    try:
        driver = subprocess.run([sys.executable, __file__, "--driver", json.dumps(spec)],
                                env=driver_env, capture_output=True, text=True,
                                timeout=frames / rate + 300)
    finally:
        node.terminate()
        node.wait(timeout=30)
        node_log.close()
    if driver.returncode != 0:
        raise RuntimeError(f"driver failed:\n{driver.stderr}\nnode log in {node_log.name}")
    return {**json.loads(driver.stdout.strip().splitlines()[-1]), "load": os.getloadavg()[0]}


def wait_until(node, when: float) -> None:
    """Spin ``node`` (receiving outputs) until time.monotonic() reaches ``when``."""
    import rclpy
    while time.monotonic() < when:
        rclpy.spin_once(node, timeout_sec=max(0.0, when - time.monotonic()))


def camera_message(image, compressed: bool):
    """A CompressedImage of (format, data) or an Image of image fields."""
    from sensor_msgs.msg import CompressedImage, Image
    if compressed:
        msg = CompressedImage(format=image[0])
        msg.data = image[1]
        return msg
    msg = Image(height=image.height, width=image.width, encoding=image.encoding,
                step=image.step)
    msg.data = image.data
    return msg


def drive(spec: dict) -> dict:
    """The driver process: publish, receive, measure; prints one JSON line."""
    import cv2
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from sensor_msgs.msg import CompressedImage

    from vps_ros.data.synthetic.dataset import SyntheticDataset
    from vps_ros.imgmsg import encode_compressed, from_array

    rclpy.init()
    node = rclpy.create_node("bench_driver")
    cams = spec["cameras"]
    prefix = [f"{c}/" if c else "" for c in cams]
    height, width = spec["size"]
    frames = [cv2.resize(f.image, (width, height), interpolation=cv2.INTER_LINEAR)
              for f in SyntheticDataset("val", 1, 50, 256, 512)]
    compressed = spec["transport"] == "compressed"
    if compressed:      # jpeg, quality 90, encoded once: a camera's encoder is not timed
        images = [encode_compressed(rgb, "jpeg") for rgb in frames]
    else:
        images = [from_array(rgb, "rgb8") for rgb in frames]
    camera_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE) \
        if spec["qos"] == "reliable" else qos_profile_sensor_data
    pubs = [node.create_publisher(CompressedImage, p + "image/compressed", camera_qos)
            if compressed else node.create_publisher(Image, p + "image", camera_qos)
            for p in prefix]
    latencies: list[list[tuple[int, float]]] = [[] for _ in cams]
    viewed = [0]
    diagnostics: dict[str, dict] = {}

    def on_panoptic(k: int, msg: Image) -> None:
        now = time.time_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latencies[k].append((stamp, (now - stamp) / 1e6))

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            diagnostics[status.name.rsplit(": ", 1)[-1]] = {kv.key: kv.value
                                                            for kv in status.values}

    subs = [node.create_subscription(Image, p + "panoptic", lambda m, k=k: on_panoptic(k, m),
                                     QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
            for k, p in enumerate(prefix)]
    if spec["viewer"]:
        def on_viewed(msg: Image) -> None:
            viewed[0] += 1
        subs += [node.create_subscription(Image, p + "panoptic", on_viewed,
                                          qos_profile_sensor_data) for p in prefix]
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    deadline = time.monotonic() + 300  # configure compiles the network with --compile
    while not (all(p.get_subscription_count() for p in pubs)
               and all(s.get_publisher_count() for s in subs)):
        if time.monotonic() > deadline:
            raise SystemExit("the node did not come up within 300 s")
        rclpy.spin_once(node, timeout_sec=0.05)

    period, sent, rss = 1.0 / spec["rate"], 0, []
    start, warm_stamp = time.monotonic(), time.time_ns() + int(WARMUP_S * 1e9)
    while sent < spec["frames"]:
        due = start + sent * period
        for k, pub in enumerate(pubs):
            wait_until(node, due + k * period / len(pubs))
            stamp = time.time_ns()
            msg = camera_message(images[sent % len(images)], compressed)
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            pub.publish(msg)
        sent += 1
        if sent % RSS_EVERY == 0:
            rss.append(rss_mib(spec["node_pid"]))
    sending_s = time.monotonic() - start
    settle = time.monotonic() + 3.0
    while time.monotonic() < settle:
        rclpy.spin_once(node, timeout_sec=0.05)
    rss.append(rss_mib(spec["node_pid"]))
    kept = [lat for per_cam in latencies for stamp, lat in per_cam if stamp >= warm_stamp]
    def total(key: str) -> int:
        return sum(int(diagnostics.get(c or "camera", {}).get(key, "0")) for c in cams)
    result = {"rate_hz": spec["rate"], "cameras": len(cams), "sent_per_camera": sent,
              "received": sum(len(x) for x in latencies),
              "viewer_received": viewed[0] if spec["viewer"] else None,
              "node_received": total("frames received"),
              "output_hz_per_camera": sum(len(x) for x in latencies) / len(cams) / sending_s,
              "latency_p50_ms": float(np.percentile(kept, 50)) if kept else float("nan"),
              "latency_p95_ms": float(np.percentile(kept, 95)) if kept else float("nan"),
              "dropped": total("frames dropped"),
              "lost": sent * len(cams) - total("frames received"),
              "rss_early_mib": rss[0], "rss_max_mib": max(rss), "rss_end_mib": rss[-1],
              "frames_per_model_call": diagnostics.get("model", {}).get("frames per call"),
              "model_ms_p50": float(diagnostics.get("model", {}).get("model time p50 (ms)",
                                                                     "nan")),
              "backend": diagnostics.get("model", {}).get("backend", "?")}
    rclpy.try_shutdown()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 30, 100])
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--frames", type=int, default=2000, help="frames per camera and run")
    parser.add_argument("--model", type=Path, help="checkpoint (default: see above)")
    parser.add_argument("--threads", type=int,
                        help="the node's threads parameter (default: the params file's)")
    parser.add_argument("--compile", action="store_true",
                        help="set the node's compile parameter (torch.compile the network)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--size", default="256x512",
                        help="camera frames' height x width (default 256x512)")
    parser.add_argument("--camera-qos", choices=["sensor_data", "reliable"],
                        default="sensor_data", help="QoS of the driver's image publisher")
    parser.add_argument("--camera-transport", choices=["raw", "compressed"], default="raw",
                        help="raw rgb8 Image, or jpeg CompressedImage on image/compressed "
                             "(the node's input_transport follows)")
    parser.add_argument("--camera-profile", action="store_true",
                        help="the driver uses config/fastdds.xml (default: Fast DDS defaults)")
    parser.add_argument("--viewer", action="store_true",
                        help="a best-effort subscriber of panoptic in the driver (a viewer)")
    parser.add_argument("--dds-transports", help="FASTDDS_BUILTIN_TRANSPORTS of both processes")
    parser.add_argument("--backend", choices=["torch", "openvino", "onnxruntime"],
                        help="the node's backend parameter (default: the params file's)")
    parser.add_argument("--driver", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        print(json.dumps(drive(json.loads(args.driver))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint, what = (args.model, str(args.model)) if args.model else \
            default_checkpoint(folder)
        threads = args.threads if args.threads is not None else "params file's"
        size = tuple(int(v) for v in args.size.split("x"))
        print(f"model: {what}; node threads parameter: {threads}; compile: {args.compile}; "
              f"camera {size[0]}x{size[1]} {args.camera_transport}, {args.camera_qos}, "
              f"{'package profile' if args.camera_profile else 'Fast DDS defaults'}; "
              f"FASTDDS_BUILTIN_TRANSPORTS {args.dds_transports or 'unset'}; "
              f"backend: {args.backend or 'params file' + chr(39) + 's'}; "
              f"{args.frames} frames per camera and run; {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f} at start")
        domain = 40 + os.getpid() % 50
        for cameras in args.cameras:
            for rate in args.rates:
                print_row([run_config(rate, cameras, args.frames, checkpoint, args.threads,
                                      args.compile, domain, folder, size, args.dds_transports,
                                      args.backend, {"qos": args.camera_qos,
                                                     "profile": args.camera_profile,
                                                     "viewer": args.viewer,
                                                     "transport": args.camera_transport})
                           for _ in range(args.repeats)])


def print_row(runs: list[dict]) -> None:
    def med(key: str) -> str:
        values = [r[key] for r in runs]
        text = f"{statistics.median(values):.1f}"
        return text + (f" ({min(values):.1f}-{max(values):.1f})" if len(values) > 1 else "")
    first = runs[0]
    print(f"{first['cameras']} camera(s) @ {first['rate_hz']:g} Hz: "
          f"output {med('output_hz_per_camera')} Hz/camera, "
          f"latency p50 {med('latency_p50_ms')} ms, p95 {med('latency_p95_ms')} ms, "
          f"dropped {med('dropped')} and lost {med('lost')} of "
          f"{first['sent_per_camera'] * first['cameras']}, "
          + (f"viewer (best effort) got {med('viewer_received')}, "
             if first["viewer_received"] is not None else "") +
          f"RSS {med('rss_early_mib')} MiB after {RSS_EVERY} frames, "
          f"{med('rss_end_mib')} MiB after {first['sent_per_camera']} (max between: "
          f"{med('rss_max_mib')}), "
          f"frames per model call {first['frames_per_model_call']}, "
          f"model time p50 {med('model_ms_p50')} ms, backend {first['backend']}, "
          f"load average {med('load')}", flush=True)


if __name__ == "__main__":
    main()
