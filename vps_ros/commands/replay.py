"""``vps-ros replay``: replay a recorded drive (rosbag2) through the perception pipeline,
offline in-process or live through the real node over DDS, and write an evaluation
report (metrics.json, report.md, pictures, video).

``main`` is also the ROS 2 executable ``replay_eval`` (launch/replay_eval.launch.py):
the same arguments, ROS arguments (``--ros-args ...``) left out.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..data import bags
from ..errors import ConfigError, VpsRosError
from ..types import ClassTable
from .exits import run_command, sigterm_as_interrupt
from .paths import check_outputs
from ..metrics.evaluate import check_windows
from ..replay.cameras import cameras_of
from ..pipeline import PipelineConfig
from ..replay.fleet import FleetOptions, expand_bags, run_fleet
from ..replay.fleet_report import print_fleet_summary
from ..replay.runner import (DEFAULT_WINDOWS, MODES, ReplayOptions, model_classes,
                             offline_engine, print_summary, replay)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bags", nargs="+", metavar="BAG", help="rosbag2 to replay (folder "
                        "with metadata.yaml, or an .mcap / .db3 file); several bags, a folder "
                        "of bags or @LIST (a file with one path a line) replay a fleet of "
                        "drives, offline, into one report (docs/fleet.md)")
    parser.add_argument("--image-topic", action=_ImageTopic, dest="streams", required=True,
                        metavar="TOPIC", help="camera image topic (sensor_msgs/Image or "
                        "CompressedImage); repeat for several cameras")
    parser.add_argument("--gt-topic", action=_GroundTruthTopic, dest="streams",
                        metavar="TOPIC", help="ground truth (32SC1 Image, same header stamps) "
                        "of the --image-topic given just before it; leave out for a camera "
                        "without ground truth (outputs and latency only)")
    parser.add_argument("--mode", choices=MODES, default="offline",
                        help="offline: Pipeline in this process, deterministic; live: the "
                        "perception node in its own process, over DDS (default %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--lossless", action="store_true",
                        help="live: send each frame only once the node answered the last "
                        "one (nothing dropped; the same metrics as offline)")
    parser.add_argument("--rate", type=float, metavar="FACTOR",
                        help="live: playback speed, 1 = as recorded (default: 1; with "
                        "--lossless: as fast as the node answers)")
    parser.add_argument("--record", type=Path, metavar="OUT_BAG",
                        help="record the outputs (/<camera>/panoptic, /<camera>/objects) "
                        "into this new rosbag2 (mcap)")
    parser.add_argument("--model", default="", help="segmenter: a checkpoint (.pt), a "
                        "transformers model folder or hf:ORG/NAME[@REVISION] (default: the "
                        "parameters file's, else models/default.pt)")
    parser.add_argument("--model-classes", default="", metavar="CLASSES", help="class table "
                        "of the model's outputs (the node's classes parameter): a name of "
                        "config/classes_<name>.yaml or a YAML path (default: the parameters "
                        "file's, else a transformers model's labels matched to config/)")
    parser.add_argument("--params", type=Path, help="node parameters file (default: "
                        "config/perception.yaml); used offline and live")
    parser.add_argument("--windows", type=int, nargs="+", metavar="N",
                        help=f"VPQ window sizes in annotated frames (default "
                        f"{' '.join(map(str, DEFAULT_WINDOWS))})")
    parser.add_argument("--classes", help="class table of the ground truth: a name of "
                        "config/classes_<name>.yaml or a YAML path (default: the bag's "
                        "recorded table, else synthetic)")
    parser.add_argument("--no-video", action="store_true", help="do not write overlay.mp4")
    fleet = parser.add_argument_group("fleet (several drives, one report)")
    fleet.add_argument("--workers", type=int, metavar="N", help="replay N drives at once in "
                       "processes of this machine (with --ray: the size of the local Ray "
                       "cluster in drives; default: one process, or every core for Ray)")
    fleet.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS", help="run each "
                       "drive as a Ray task: alone, on a local cluster started for this run; "
                       "auto, HOST:PORT or ray://HOST:PORT to join a cluster (needs the ray "
                       "extra)")
    fleet.add_argument("--cpus-per-drive", type=float, default=1.0, metavar="N",
                       help="Ray CPUs each drive's task reserves (default %(default)s)")
    fleet.add_argument("--gpus-per-drive", type=float, default=0.0, metavar="N",
                       help="Ray GPUs each drive's task reserves; 1 runs one segmenter per GPU "
                       "(set device: cuda in --params; default %(default)s)")
    fleet.add_argument("--resume", action="store_true", help="keep the drives already scored "
                       "in --out/drives by an earlier run with the same settings; replay the "
                       "others (and those that failed)")


class _ImageTopic(argparse.Action):
    """--image-topic T: a new camera stream ``[T, None]``."""

    def __call__(self, parser, namespace, value, option_string=None):
        streams = list(getattr(namespace, self.dest) or [])
        setattr(namespace, self.dest, streams + [[value, None]])


class _GroundTruthTopic(argparse.Action):
    """--gt-topic G: the ground truth of the camera stream named just before."""

    def __call__(self, parser, namespace, value, option_string=None):
        streams = list(getattr(namespace, self.dest) or [])
        if not streams or streams[-1][1] is not None:
            parser.error(f"--gt-topic {value}: give it right after the --image-topic it "
                         "belongs to (one each)")
        streams[-1] = [streams[-1][0], value]
        setattr(namespace, self.dest, streams)


def run(args: argparse.Namespace) -> int:
    """The replay; SIGTERM stops it as Ctrl-C does (partial report, exit 130)."""
    with sigterm_as_interrupt():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    check_outputs(folders={"--out": args.out, "--record": args.record})
    images = [image for image, _ in args.streams]
    truths = [truth for _, truth in args.streams]
    options = ReplayOptions(
        bag=Path(args.bags[0]), cameras=cameras_of(images, truths), out=args.out,
        mode=args.mode, lossless=args.lossless, rate=args.rate, record=args.record,
        params=args.params, model=args.model, model_classes=args.model_classes,
        windows=check_windows(args.windows or DEFAULT_WINDOWS),
        classes=ClassTable.named(args.classes) if args.classes else None,
        video=not args.no_video)
    if _is_fleet(args):
        return _run_fleet(args, options)
    try:
        document = replay(options, ENGINES[args.mode])
    except (VpsRosError, KeyboardInterrupt):
        metrics = args.out / "metrics.json"
        if metrics.is_file():
            print(f"vps-ros replay: partial report written to {args.out / 'report.md'}")
        raise
    print_summary(document, args.out)
    return 0


def live_engine(options: ReplayOptions, config: PipelineConfig):
    """The engine of ``--mode live``: the real node over DDS (imports rclpy)."""
    from ..ros.replay_live import LiveEngine
    return LiveEngine(config, options.cameras, model_classes(config), options.params,
                      options.lossless, options.rate, options.out / "node.log")


ENGINES = {"offline": offline_engine, "live": live_engine}


def _is_fleet(args: argparse.Namespace) -> bool:
    """Several bags, a folder of bags, a list, or a fleet option: the fleet replay."""
    first = Path(args.bags[0])
    return (len(args.bags) > 1 or args.bags[0].startswith("@") or args.resume
            or args.workers is not None or args.ray is not None
            or (first.is_dir() and not bags.is_bag(first)))


def _run_fleet(args: argparse.Namespace, options: ReplayOptions) -> int:
    """Exit code 0, or 1 when a drive failed (the report is written either way)."""
    single = [option for option, given in (("--mode live", args.mode == "live"),
                                           ("--record", args.record), ("--lossless", args.lossless),
                                           ("--rate", args.rate is not None)) if given]
    if single:
        raise ConfigError(f"{', '.join(single)}: these replay one drive; several drives are "
                          "replayed offline (give one bag)")
    fleet = FleetOptions(expand_bags(args.bags), dataclasses.replace(options, video=False),
                         args.workers, args.ray, args.cpus_per_drive, args.gpus_per_drive,
                         args.resume)
    document, failed = run_fleet(fleet)
    print_fleet_summary(document, args.out)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """``vps-ros replay`` as a program of its own (the ``replay_eval`` executable)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--ros-args" in argv:
        argv = argv[:argv.index("--ros-args")]
    parser = argparse.ArgumentParser(prog="replay_eval", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_command("replay", run, parser.parse_args(argv))
