"""rosbag2 files (mcap or sqlite3), written and read with ``rosbags``, without ROS.

A drive is one bag: camera frames on an Image (or CompressedImage) topic, camera
intrinsics on a CameraInfo topic and, for annotated frames, the ground truth as a
``32SC1`` Image (``class * label_divisor + track id``) with the same header stamp. The
bag's metadata carries the class table and label divisor (``custom_data``). All
Image <-> array conversion goes through :mod:`vps_ros.imgmsg`. Bags are opened through
:mod:`vps_ros.data.bags.storage`, which also reads what a killed recorder left on disk.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from ... import imgmsg
from ...errors import DataError, first_line
from ...resources import share_dir
from ...types import ClassTable
from .storage import BagSource, Recovery, is_storage_file, open_bag
from ..frames import VideoDataset, VideoFrame

IMAGE_TOPIC = "/camera/image_raw"
INFO_TOPIC = "/camera/camera_info"
COMPRESSED_TOPIC = "/camera/image_raw/compressed"
GT_TOPIC = "/gt/panoptic"
FRAME_RATE_HZ = 10.0
FRAME_ID = "camera"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
_CLASSES_KEY = "vps_ros.classes"
_SPLIT_FILE = re.compile(r"(.+)_(\d+)")       # rosbag2 names split files NAME_INDEX
_DIVISOR_KEY = "vps_ros.label_divisor"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


def typestore() -> Typestore:
    """The ROS 2 message types (Kilted) plus this package's own messages (``msg/*.msg``),
    for reading bags and for recording node outputs into new ones."""
    store = get_typestore(Stores.ROS2_KILTED)
    types: dict = {}
    for path in sorted((share_dir() / "msg").glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"vps_ros/msg/{path.stem}"))
    store.register(types)
    return store


@dataclass(frozen=True)
class TopicInfo:
    msgtype: str
    count: int


def topics(path: Path) -> dict[str, TopicInfo]:
    """Topics of a bag with their message type and count (of a recovered bag: the
    messages recovered)."""
    with open_bag(path) as source:
        return {name: TopicInfo(topic.msgtype, source.counts.get(name, 0))
                for name, topic in sorted(source.topics.items())}


def recovery(path: Path) -> Recovery | None:
    """What was recovered of a bag that was not whole (None for a whole bag)."""
    with open_bag(path) as source:
        return source.recovery


def _connection(source: BagSource, topic: str, path: Path, types: tuple[str, ...]) -> str:
    """The message type of ``topic``, checked against ``types``."""
    if topic not in source.topics:
        listing = ", ".join(f"{t.name} ({t.msgtype})" for t in source.topics.values()) or "none"
        raise DataError(f"{path}: no topic {topic!r} in the bag; it has: {listing}")
    msgtype = source.topics[topic].msgtype
    if msgtype not in types:
        raise DataError(f"{path}: topic {topic!r} carries {msgtype}, expected "
                        f"{' or '.join(types)}")
    return msgtype


def _stamp(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def _image(msg: Any, msgtype: str, where: str) -> np.ndarray:
    if msgtype == COMPRESSED:
        return imgmsg.decode_compressed(msg.format, msg.data, where)
    return imgmsg.to_array(msg.height, msg.width, msg.encoding, msg.step, msg.data,
                           msg.is_bigendian, where)


def read_frames(path: Path, image_topic: str = IMAGE_TOPIC, gt_topic: str | None = GT_TOPIC
                ) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """(header stamp ns, RGB image, ground truth or None) for every message of
    ``image_topic`` in log order; ground truth is the ``gt_topic`` message with the same
    header stamp (frames without one get None). Both streams must have increasing stamps;
    a ground-truth message matching no image is a DataError (a frame would be lost).

    Of a bag that lost messages (cut, damaged chunk, unreadable row; see
    :mod:`vps_ros.data.bags.storage`), an image without ground truth is used only when it
    was logged before the first loss: after it, its ground truth may be what was lost,
    and a frame is never passed off as unannotated. A ground-truth message whose image
    was lost is left out."""
    path = Path(path)
    store = typestore()
    with open_bag(path) as source:
        msgtypes = {image_topic: _connection(source, image_topic, path, (IMAGE, COMPRESSED))}
        if gt_topic:
            msgtypes[gt_topic] = _connection(source, gt_topic, path, (IMAGE,))
        pending_images: list[tuple[int, np.ndarray, int]] = []
        pending_gt: dict[int, np.ndarray] = {}
        gt_reached = -1
        read = dict.fromkeys(msgtypes, 0)
        for topic, logged, raw in source.messages(list(msgtypes)):
            msgtype = msgtypes[topic]
            read[topic] += 1
            try:
                msg = store.deserialize_cdr(raw, msgtype)
            except (SerdeError, ValueError, IndexError, KeyError, struct.error) as exc:
                raise DataError(f"{path}: message {read[topic]} of "
                                f"{source.counts.get(topic, '?')} on {topic} (logged at "
                                f"{logged} ns) is not a {msgtype}, the bag is damaged "
                                f"({first_line(exc)})") from None
            stamp = _stamp(msg)
            where = f"{path} topic {topic} stamp {stamp}"
            if topic == image_topic:
                pending_images.append((stamp, _image(msg, msgtype, where), logged))
            else:
                if msg.encoding != "32SC1":
                    raise DataError(f"{where}: ground truth must be 32SC1, got {msg.encoding!r}")
                pending_gt[stamp] = _image(msg, msgtype, where)
                gt_reached = max(gt_reached, stamp)
            while pending_images:
                stamp0, image0, logged0 = pending_images[0]
                if stamp0 in pending_gt:
                    yield stamp0, image0, pending_gt.pop(stamp0)
                elif gt_topic is None or gt_reached > stamp0:
                    if not _maybe_lost(source, logged0, gt_topic):
                        yield stamp0, image0, None
                else:
                    break
                pending_images.pop(0)
                _orphans(pending_gt, stamp0, path, gt_topic, source.recovery is not None)
        for stamp0, image0, logged in pending_images:
            truth = pending_gt.pop(stamp0, None)
            if truth is not None or not _maybe_lost(source, logged, gt_topic):
                yield stamp0, image0, truth
        _orphans(pending_gt, None, path, gt_topic, source.recovery is not None)


def _maybe_lost(source: BagSource, logged: int, gt_topic: str | None) -> bool:
    """Whether the ground truth of an image logged at ``logged`` may have been lost."""
    r = source.recovery
    return (gt_topic is not None and r is not None and r.intact_until_ns is not None
            and logged >= r.intact_until_ns)


def _orphans(pending_gt: dict[int, np.ndarray], up_to: int | None, path: Path, topic: str | None,
             recovered: bool) -> None:
    """A ground-truth message without its image is an error, except in a recovered bag,
    where the image may be in the lost part: then it is left out."""
    lost = sorted(s for s in pending_gt if up_to is None or s < up_to)
    if recovered:
        for stamp in lost:
            del pending_gt[stamp]
    elif lost:
        raise DataError(f"{path}: ground truth on {topic} at stamp {lost[0]} ns has no image "
                        f"with that header stamp")


def bag_metadata(path: Path) -> tuple[ClassTable | None, int | None]:
    """Class table and label divisor that vps_ros recorded in a bag, if any."""
    with open_bag(path) as source:
        custom = source.custom
    classes = divisor = None
    try:
        if _CLASSES_KEY in custom:
            classes = ClassTable.from_dict(json.loads(custom[_CLASSES_KEY]),
                                           where=f"{path} metadata")
        if _DIVISOR_KEY in custom:
            divisor = int(custom[_DIVISOR_KEY])
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: malformed vps_ros metadata ({exc})") from None
    return classes, divisor


class BagDataset:
    """A VideoDataset over bags: one bag is one sequence (named after the bag's folder)."""

    def __init__(self, paths: list[Path], image_topic: str = IMAGE_TOPIC,
                 gt_topic: str | None = GT_TOPIC, classes: ClassTable | None = None,
                 label_divisor: int | None = None) -> None:
        if not paths:
            raise DataError("no bags given")
        self.paths = sorted(paths)
        self.image_topic, self.gt_topic = image_topic, gt_topic
        recorded, divisor = bag_metadata(self.paths[0])
        self.classes = classes or recorded or ClassTable.builtin("synthetic")
        self.label_divisor = label_divisor or divisor or 1000
        for path in self.paths:
            _connection_check(path, image_topic, gt_topic)

    @property
    def sequence_ids(self) -> list[str]:
        return [p.name for p in self.paths]

    def __iter__(self) -> Iterator[VideoFrame]:
        for path in self.paths:
            frames = read_frames(path, self.image_topic, self.gt_topic)
            for index, (stamp, image, gt) in enumerate(frames):
                if gt is not None and gt.shape != image.shape[:2]:
                    raise DataError(f"{path}: frame {index} (stamp {stamp}): image is "
                                    f"{image.shape[1]}x{image.shape[0]}, ground truth "
                                    f"{gt.shape[1]}x{gt.shape[0]}")
                yield VideoFrame(path.name, index, stamp, image, gt)


def _connection_check(path: Path, image_topic: str, gt_topic: str | None) -> None:
    with open_bag(path) as source:
        _connection(source, image_topic, path, (IMAGE, COMPRESSED))
        if gt_topic:
            _connection(source, gt_topic, path, (IMAGE,))


def find_bags(path: Path) -> list[Path]:
    """A bag (folder with metadata.yaml or storage files, or a .mcap/.db3 file) or a
    folder of bags (bag folders and .mcap/.db3 files)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: bag or folder of bags not found")
    if is_bag(path) or path.is_file():
        return [path]
    bags = sorted(p for p in path.iterdir() if is_bag(p) or is_storage_file(p))
    if not bags:
        raise DataError(f"{path}: no rosbag2 bags in this folder (folders with metadata.yaml "
                        "or .mcap/.db3 files)")
    return bags


def is_bag(path: Path) -> bool:
    """Whether ``path`` is one bag folder: metadata.yaml, or the storage files of one
    recording that never wrote it: a single file, or the files rosbag2 splits a
    recording into (``NAME_0``, ``NAME_1``, ...). Other storage files side by side are
    each a bag of its own (:func:`find_bags`)."""
    if (path / "metadata.yaml").is_file():
        return True
    if not path.is_dir():
        return False
    names = [_SPLIT_FILE.fullmatch(p.stem) for p in path.iterdir() if is_storage_file(p)]
    if len(names) == 1:
        return True
    return (all(names) and len({name[1] for name in names}) == 1
            and sorted(int(name[2]) for name in names) == list(range(len(names))))


@dataclass(frozen=True)
class BagOptions:
    """How frames are recorded; topics set to None are left out."""

    storage: str = "mcap"
    image_topic: str = IMAGE_TOPIC
    info_topic: str | None = INFO_TOPIC
    compressed_topic: str | None = None
    gt_topic: str | None = GT_TOPIC
    encoding: str = "rgb8"
    frame_rate: float = FRAME_RATE_HZ
    frame_id: str = FRAME_ID
    start_ns: int = 0
    intrinsics: tuple[float, float, float, float] | None = None   # fx, fy, cx, cy

    def __post_init__(self) -> None:
        if self.storage not in STORAGES:
            raise DataError(f"unknown bag storage {self.storage!r}; choose {', '.join(STORAGES)}")
        if self.encoding not in imgmsg.COLOR_ENCODINGS:
            raise DataError(f"unsupported image encoding {self.encoding!r}; choose "
                            f"{', '.join(imgmsg.COLOR_ENCODINGS)}")
        if self.frame_rate <= 0:
            raise DataError(f"frame rate must be positive, got {self.frame_rate}")


def end_frame(writer: Writer) -> None:
    """Hand what ``writer`` holds of the frame just written to the operating system: the
    open mcap chunk is closed and flushed, a sqlite3 transaction committed. A recorder
    killed later (SIGKILL, power cut after the OS wrote its cache) then leaves every
    earlier frame in a file that :mod:`vps_ros.data.bags.storage` recovers. (rosbags
    itself closes a chunk only past 1 MiB and commits only at the end.)"""
    storage = writer.storage
    if isinstance(storage, McapWriter):
        if storage.chunk.bio.tell():
            storage.close_chunk()
        storage.bio.flush()
    elif isinstance(storage, Sqlite3Writer):
        storage.conn.commit()


class BagWriter:
    """Records frames of one drive into a new bag (``path`` must not exist yet); each
    frame is on disk once :meth:`add` returns (see :func:`end_frame`)."""

    def __init__(self, path: Path, options: BagOptions, classes: ClassTable, label_divisor: int
                 ) -> None:
        self.path, self.options = Path(path), options
        self.store = typestore()
        try:
            self.writer = Writer(self.path, version=9, storage_plugin=STORAGES[options.storage])
        except WriterError as exc:
            raise DataError(f"{self.path}: {exc}") from None
        self.writer.set_custom_data(_CLASSES_KEY, json.dumps(classes.to_dict()))
        self.writer.set_custom_data(_DIVISOR_KEY, str(label_divisor))
        self.writer.open()
        self.connections = {}
        for topic, msgtype in ((options.image_topic, IMAGE), (options.info_topic, CAMERA_INFO),
                               (options.compressed_topic, COMPRESSED), (options.gt_topic, IMAGE)):
            if topic:
                self.connections[topic] = self.writer.add_connection(topic, msgtype,
                                                                     typestore=self.store)

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.writer.close()

    def _header(self, stamp_ns: int):
        t = self.store.types
        time = t["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000,
                                               nanosec=stamp_ns % 1_000_000_000)
        return t["std_msgs/msg/Header"](stamp=time, frame_id=self.options.frame_id)

    def _write(self, topic: str, msg: Any, msgtype: str, stamp_ns: int) -> None:
        self.writer.write(self.connections[topic], stamp_ns, self.store.serialize_cdr(msg, msgtype))

    def _image_msg(self, array: np.ndarray, encoding: str, stamp_ns: int):
        fields = imgmsg.from_array(array, encoding)
        return self.store.types[IMAGE](
            header=self._header(stamp_ns), height=fields.height, width=fields.width,
            encoding=fields.encoding, is_bigendian=fields.is_bigendian, step=fields.step,
            data=np.frombuffer(fields.data, np.uint8))

    def _camera_info(self, height: int, width: int, stamp_ns: int):
        t = self.store.types
        default = (0.72 * width, 0.72 * width, width / 2, height / 2)
        fx, fy, cx, cy = self.options.intrinsics or default
        k = np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], np.float64)
        p = np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], np.float64)
        roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                    do_rectify=False)
        return t[CAMERA_INFO](header=self._header(stamp_ns), height=height, width=width,
                              distortion_model="plumb_bob", d=np.zeros(5), k=k,
                              r=np.eye(3).ravel(), p=p, binning_x=0, binning_y=0, roi=roi)

    def add(self, index: int, image: np.ndarray, panoptic: np.ndarray | None) -> int:
        """Record frame ``index`` (stamped start + index / frame rate); returns the stamp."""
        o = self.options
        stamp = o.start_ns + int(round(index * 1e9 / o.frame_rate))
        self._write(o.image_topic, self._image_msg(image, o.encoding, stamp), IMAGE, stamp)
        if o.info_topic:
            info = self._camera_info(*image.shape[:2], stamp)
            self._write(o.info_topic, info, CAMERA_INFO, stamp)
        if o.compressed_topic:
            fmt, data = imgmsg.encode_compressed(image, "jpeg")
            msg = self.store.types[COMPRESSED](header=self._header(stamp), format=fmt,
                                               data=np.frombuffer(data, np.uint8))
            self._write(o.compressed_topic, msg, COMPRESSED, stamp)
        if o.gt_topic and panoptic is not None:
            self._write(o.gt_topic, self._image_msg(panoptic.astype(np.int32), "32SC1", stamp),
                        IMAGE, stamp)
        end_frame(self.writer)
        return stamp


def write(dataset: VideoDataset, root: Path, options: BagOptions = BagOptions()) -> list[Path]:
    """One bag per sequence, ``root/<sequence>``; returns the bags' paths."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if options.intrinsics is None and hasattr(dataset, "intrinsics"):
        options = dataclasses.replace(options, intrinsics=tuple(dataset.intrinsics))
    paths = []
    for sequence, frames in itertools.groupby(dataset, key=lambda frame: frame.sequence):
        paths.append(root / sequence)
        record(frames, paths[-1], dataset.classes, dataset.label_divisor, options)
    return paths


def record(frames: Iterable[VideoFrame], path: Path, classes: ClassTable, label_divisor: int,
           options: BagOptions = BagOptions()) -> None:
    """Record the frames of one drive into the bag ``path``."""
    with BagWriter(path, options, classes, label_divisor) as writer:
        for frame in frames:
            writer.add(frame.index, frame.image, frame.panoptic)
