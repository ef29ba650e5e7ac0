"""Shared pieces of the replay tests: a small real model with loose thresholds (so an
untrained network still gives segments), short synthetic bags, the CLI in-process."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from mcap.reader import make_reader
from rosbags.rosbag2 import Reader, Writer

from testkit.pipeline_helpers import HEIGHT, LOOSE_PARAMS, WIDTH, write_small_checkpoint
from vps_ros import cli, imgmsg
from vps_ros.config import nest_dotted
from vps_ros.data import bags
from vps_ros.data.synthetic.dataset import SyntheticDataset

NUM_FRAMES = 6


def small_model(folder: Path) -> tuple[Path, Path]:
    """(checkpoint, node parameters file with loose thresholds and one thread)."""
    model = write_small_checkpoint(folder / "small.pt")
    params = folder / "params.yaml"
    values = nest_dotted({**LOOSE_PARAMS, "threads": 1})
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
    return model, params


def synthetic_frames(num_frames: int = NUM_FRAMES, sequence: int = 0) -> tuple:
    dataset = SyntheticDataset("val", sequence + 1, num_frames, HEIGHT, WIDTH)
    frames = [f for f in dataset if f.sequence == dataset.sequence_ids[sequence]]
    return dataset, frames


def write_bag(path: Path, frames: list, options: bags.BagOptions = bags.BagOptions(),
              indices: list[int] | None = None) -> Path:
    """Record ``frames`` (stamps from ``indices``, default 0, 1, ...)."""
    dataset = SyntheticDataset("val", 1, 1, HEIGHT, WIDTH)
    with bags.BagWriter(path, options, dataset.classes, dataset.label_divisor) as writer:
        for k, frame in enumerate(frames):
            writer.add(k if indices is None else indices[k], frame.image, frame.panoptic)
    return path


def cut_inside_frame(bag: Path, frame: int) -> None:
    """Cut the bag's mcap in the middle of ``frame``'s chunk (one chunk per frame)."""
    data = next(bag.glob("*.mcap"))
    with data.open("rb") as f:
        chunks = sorted(make_reader(f).get_summary().chunk_indexes,
                        key=lambda c: c.chunk_start_offset)
    cut = chunks[frame].chunk_start_offset + chunks[frame].chunk_length // 2
    data.write_bytes(data.read_bytes()[:cut])


def replay(bag: Path, out: Path, model: Path, params: Path, *extra: str,
           image_topic: str = bags.IMAGE_TOPIC, gt_topic: str | None = bags.GT_TOPIC) -> int:
    argv = ["replay", str(bag), "--image-topic", image_topic]
    argv += ["--gt-topic", gt_topic] if gt_topic else []
    return cli.main(argv + ["--out", str(out), "--model", str(model), "--params", str(params),
                            *extra])


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def recorded(bag: Path) -> dict[str, list]:
    """Topic -> [(log stamp, message)] of a bag, read with rosbags alone."""
    store = bags.typestore()
    found: dict[str, list] = {}
    with Reader(bag) as reader:
        for conn, stamp, raw in reader.messages():
            found.setdefault(conn.topic, []).append((stamp, store.deserialize_cdr(raw,
                                                                                  conn.msgtype)))
    return found


def panoptic_of(msg) -> np.ndarray:
    assert msg.encoding == "32SC1"
    return msg.data.view("<i4").reshape(msg.height, msg.width)


def objects_of(msg) -> list[tuple]:
    return [(o.id, o.panoptic_id, o.class_id, o.class_name, o.is_thing, o.area,
             o.bbox.x_offset, o.bbox.y_offset, o.bbox.width, o.bbox.height, o.frames_since_seen)
            for o in msg.objects]



def write_images(path: Path, messages: list[tuple[str, int, int, np.ndarray, str]]) -> Path:
    """A bag written with rosbags alone: Image messages ``(topic, log time ns, header
    stamp ns, array, encoding)`` in the given order."""
    store = bags.typestore()
    t = store.types
    with Writer(path, version=9) as writer:
        conns = {}
        for topic, log_ns, stamp, array, encoding in messages:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, bags.IMAGE, typestore=store)
            fields = imgmsg.from_array(array, encoding)
            header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](
                sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id=topic.split("/")[1])
            msg = t[bags.IMAGE](header=header, height=fields.height, width=fields.width,
                                encoding=encoding, is_bigendian=0, step=fields.step,
                                data=np.frombuffer(fields.data, np.uint8))
            writer.write(conns[topic], log_ns, store.serialize_cdr(msg, bags.IMAGE))
    return path
