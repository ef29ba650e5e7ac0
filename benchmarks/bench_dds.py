"""Camera-sized images between two processes over DDS: how many arrive, how late.

A publisher process sends the same image (random bytes, stamp = publish time) at a fixed
rate; a subscriber process counts what arrives and its latency (one clock: one machine).
One row per configuration: image size and encoding, the publisher's and the
subscriber's reliability, and the publisher's Fast DDS configuration: Fast DDS's
defaults, or the package's profile (config/fastdds.xml, which the node and the live
replay use). The subscriber always runs on Fast DDS's defaults: only the publisher's
shared-memory segment carries a sample (docs/cameras.md).

Rows (1920x1080, 10 Hz): a camera's rgb8 frame (6 MiB) and the node's 32SC1 panoptic
image (8 MiB), each published best effort and reliable, to best-effort and reliable
subscribers, with and without the profile (a reliable subscriber does not match a
best-effort publisher: those rows are left out).

    bash scripts/in_loopback_netns.sh python benchmarks/bench_dds.py [--frames 100]
        [--rate 10] [--size 1080x1920] [--encodings rgb8 32SC1]

Both processes run with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a domain id of
their own.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time

import numpy as np

BYTES_PER_PIXEL = {"rgb8": 3, "32SC1": 4}
SETTLE_S = 3.0        # after the last frame: what is still under way arrives
MATCH_TIMEOUT_S = 30.0


def qos(reliability: str):
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    if reliability == "reliable":
        return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    return qos_profile_sensor_data


def image(height: int, width: int, encoding: str):
    from sensor_msgs.msg import Image
    channels = BYTES_PER_PIXEL[encoding]
    msg = Image(height=height, width=width, encoding=encoding, step=width * channels)
    msg.data = np.random.default_rng(0).integers(0, 255, height * width * channels,
                                                 dtype=np.uint8).tobytes()
    return msg


def publish(spec: dict) -> dict:
    import rclpy
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node("bench_dds_publisher")
    pub = node.create_publisher(Image, "bench_dds", qos(spec["pub"]))
    msg = image(spec["height"], spec["width"], spec["encoding"])
    deadline = time.monotonic() + MATCH_TIMEOUT_S
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            raise SystemExit("no subscriber matched")
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)                # the subscriber's side of the match settles as well
    start, publish_ms = time.monotonic(), []
    for k in range(spec["frames"]):
        while time.monotonic() < start + k / spec["rate"]:
            time.sleep(0.001)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
        began = time.monotonic()
        pub.publish(msg)
        publish_ms.append((time.monotonic() - began) * 1e3)
    time.sleep(SETTLE_S)
    rclpy.try_shutdown()
    return {"publish_ms_p50": float(np.median(publish_ms))}


def subscribe(spec: dict) -> dict:
    import rclpy
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node("bench_dds_subscriber")
    latencies: list[float] = []

    def on_image(msg: Image) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latencies.append((time.time_ns() - stamp) / 1e6)
    node.create_subscription(Image, "bench_dds", on_image, qos(spec["sub"]))
    end = time.monotonic() + MATCH_TIMEOUT_S + spec["frames"] / spec["rate"] + 2 * SETTLE_S
    while time.monotonic() < end and len(latencies) < spec["frames"]:
        rclpy.spin_once(node, timeout_sec=0.1)
    rclpy.try_shutdown()
    return {"received": len(latencies),
            "p50": float(np.percentile(latencies, 50)) if latencies else float("nan"),
            "p95": float(np.percentile(latencies, 95)) if latencies else float("nan")}


def run(spec: dict, domain: int) -> dict:
    from vps_ros.resources import config_path
    from vps_ros.ros.dds import PROFILE_NAME, PROFILE_VARIABLES
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    for name in PROFILE_VARIABLES + ("FASTDDS_BUILTIN_TRANSPORTS",):
        env.pop(name, None)
    pub_env = dict(env)
    if spec["profile"]:
        pub_env[PROFILE_VARIABLES[0]] = str(config_path(PROFILE_NAME))
    command = [sys.executable, __file__, "--role"]
    sub = subprocess.Popen(command + ["sub", json.dumps(spec)], env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    pub = subprocess.run(command + ["pub", json.dumps(spec)], env=pub_env, text=True,
                         capture_output=True, timeout=MATCH_TIMEOUT_S * 2 + 60
                         + spec["frames"] / spec["rate"])
    out, _ = sub.communicate(timeout=MATCH_TIMEOUT_S * 2 + 60 + spec["frames"] / spec["rate"])
    if pub.returncode or sub.returncode:
        raise SystemExit(f"configuration {spec} failed: {pub.stderr[-2000:]}")
    return {**json.loads(out.strip().splitlines()[-1]),
            **json.loads(pub.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--size", default="1080x1920", help="height x width")
    parser.add_argument("--encodings", nargs="+", default=["rgb8", "32SC1"],
                        choices=sorted(BYTES_PER_PIXEL))
    parser.add_argument("--role", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        role, spec = args.role[0], json.loads(args.role[1])
        print(json.dumps(publish(spec) if role == "pub" else subscribe(spec)))
        return
    height, width = (int(v) for v in args.size.split("x"))
    print(f"{width}x{height} images at {args.rate:g} Hz, {args.frames} per row; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    domain = 40 + os.getpid() % 50
    for encoding, profile, (pub, sub) in itertools.product(
            args.encodings, (False, True),
            (("best_effort", "best_effort"), ("reliable", "best_effort"),
             ("reliable", "reliable"))):
        spec = {"height": height, "width": width, "encoding": encoding, "pub": pub, "sub": sub,
                "profile": profile, "frames": args.frames, "rate": args.rate}
        result = run(spec, domain)
        mib = height * width * BYTES_PER_PIXEL[encoding] / 2**20
        print(f"{encoding} ({mib:.1f} MiB), publisher {pub} on "
              f"{'config/fastdds.xml' if profile else 'Fast DDS defaults'}, subscriber {sub}: "
              f"received {result['received']} of {args.frames}, latency p50 "
              f"{result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, publish() p50 "
              f"{result['publish_ms_p50']:.1f} ms, load average {os.getloadavg()[0]:.1f}",
              flush=True)


if __name__ == "__main__":
    main()
