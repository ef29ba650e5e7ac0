"""``vps-ros bag``: what a rosbag2 holds, and a complete copy of a damaged one.

::

    vps-ros bag info BAG          topics, types, counts, duration, storage, complete or not
    vps-ros bag repair IN OUT     everything recoverable of IN as a new, complete bag OUT

A bag that a killed recorder left behind (no metadata.yaml, an mcap without its summary
and footer, a cut sqlite3 file) is read as :mod:`vps_ros.data.bags.storage` describes;
``repair`` always reads record by record (so a chunk damaged in the middle of a bag
whose end is intact is skipped, not fatal) and writes what it read with ``rosbags``
(metadata.yaml, indexed mcap with summary, or sqlite3), keeping the recorded custom data
(class table, label divisor).
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from rosbags.rosbag2 import Writer, WriterError
from rosbags.typesys import TypesysError, get_types_from_msg
from rosbags.typesys.store import Typestore

from .paths import check_outputs
from ..errors import DataError
from ..data.bags.storage import BagSource, Topic, open_bag
from ..data.bags.frames import STORAGES, typestore

ACTIONS = ("info", "repair")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="info: describe BAG; repair: write "
                        "everything recoverable of BAG into the new bag OUT")
    parser.add_argument("bag", type=Path, help="rosbag2 folder (with or without "
                        "metadata.yaml) or one .mcap / .db3 file")
    parser.add_argument("out", type=Path, nargs="?", help="repair: the new bag folder "
                        "(must not exist)")
    parser.add_argument("--storage", choices=list(STORAGES), help="repair: storage of OUT "
                        "(default: that of BAG)")


def run(args: argparse.Namespace) -> int:
    if args.action == "info":
        if args.out is not None:
            raise DataError(f"bag info takes one bag, got also {args.out}")
        with open_bag(args.bag) as source:
            print(describe(source))
        return 0
    if args.out is None:
        raise DataError("bag repair needs IN and OUT: vps-ros bag repair IN OUT")
    check_outputs(folders={"OUT": args.out})
    started = time.perf_counter()
    count = repair(args.bag, args.out, args.storage)
    print(f"{args.out}: complete bag of {count} messages written in "
          f"{time.perf_counter() - started:.1f} s")
    return 0


def describe(source: BagSource) -> str:
    """``ros2 bag info``-like text of a bag."""
    files = [source.path] if source.path.is_file() else sorted(
        p for p in source.path.iterdir() if p.is_file())
    size = sum(p.stat().st_size for p in files)
    duration = (source.end_ns - source.start_ns) / 1e9 if source.start_ns is not None else 0.0
    r = source.recovery
    lines = [f"Bag:        {source.path}",
             f"Files:      {', '.join(p.name for p in files)}",
             f"Size:       {size / 2**20:.2f} MiB",
             f"Storage:    {source.storage}",
             f"Complete:   {'yes' if r is None else 'no: ' + r.reason}",
             f"Duration:   {duration:.3f} s",
             f"Start:      {_stamp(source.start_ns)}",
             f"End:        {_stamp(source.end_ns)}",
             f"Messages:   {sum(source.counts.values())}"
             + ("" if r is None else " (recovered)"),
             "Topics:"]
    width = max((len(t) for t in source.topics), default=0)
    for name, topic in sorted(source.topics.items()):
        lost = r.lost.get(name) if r is not None and r.lost else None
        lines.append(f"  {name.ljust(width)}  {topic.msgtype}  {source.counts.get(name, 0)}"
                     + (f" (lost {lost})" if lost else ""))
    return "\n".join(lines)


def _stamp(ns: int | None) -> str:
    if ns is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns // 10**9)) + \
        f".{ns % 10**9:09d} UTC ({ns} ns)"


def repair(bag: Path, out: Path, storage: str | None = None) -> int:
    """Write everything recoverable of ``bag`` into the new complete bag ``out``; returns
    the number of messages written."""
    out = Path(out)
    if out.exists():
        raise DataError(f"{out}: exists already; give a new folder for the repaired bag")
    store = typestore()
    with open_bag(bag, stream=True) as source:
        try:
            writer = Writer(out, version=9, storage_plugin=STORAGES[storage or source.storage])
        except WriterError as exc:
            raise DataError(f"{out}: {exc}") from None
        for key, value in source.custom.items():
            writer.set_custom_data(key, value)
        count = 0
        try:
            with writer:
                conns = {name: _add_connection(writer, topic, store, bag)
                         for name, topic in source.topics.items()}
                for topic, stamp, raw in source.messages():
                    writer.write(conns[topic], stamp, raw)
                    count += 1
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)   # ours (it did not exist): no half bag
            raise
    return count


def _add_connection(writer: Writer, topic: Topic, store: Typestore, bag: Path):
    """The topic in the new bag, with the definition and hash of our type store where it
    knows the type, else the ones the bag recorded (hash computed where none was)."""
    if topic.msgtype in store.types:
        return writer.add_connection(topic.name, topic.msgtype, typestore=store)
    if not topic.msgdef:
        raise DataError(f"{bag}: topic {topic.name}: type {topic.msgtype} is unknown here and "
                        "the bag holds no definition of it; it cannot be repaired")
    digest = topic.digest
    if not digest:
        try:
            store.register(get_types_from_msg(topic.msgdef, topic.msgtype))
            digest = store.hash_rihs01(topic.msgtype)
        except (TypesysError, ValueError, KeyError) as exc:
            raise DataError(f"{bag}: topic {topic.name}: the recorded definition of "
                            f"{topic.msgtype} does not parse ({exc})") from None
    return writer.add_connection(topic.name, topic.msgtype, msgdef=topic.msgdef, rihs01=digest)
