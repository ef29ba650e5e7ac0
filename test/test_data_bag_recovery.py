"""Bags that a recording left damaged: cut at many offsets (a seeded sample), without
metadata.yaml, with a chunk whose CRC fails, or not bags at all. What is read back is
exactly a prefix of what was written (frames compared with the originals, mcap prefix
lengths from the file's own chunk index read with the ``mcap`` library), and
``vps-ros bag repair`` writes a bag that rosbags alone reads with the same messages."""
import random
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap.writer import Writer as McapLibWriter
from rosbags.rosbag2 import Reader

from vps_ros import cli
from vps_ros.data import bags
from vps_ros.data.formats.datasets import open_dataset
from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.errors import DataError

FRAMES = 6


@pytest.fixture(scope="module")
def drive():
    dataset = SyntheticDataset("val", 1, FRAMES, 32, 64)
    return dataset, list(dataset)


@pytest.fixture(scope="module", params=["mcap", "sqlite3"])
def original(request, drive, tmp_path_factory):
    dataset, frames = drive
    path = tmp_path_factory.mktemp(request.param) / "drive"
    bags.record(frames, path, dataset.classes, dataset.label_divisor,
                bags.BagOptions(storage=request.param))
    return request.param, path


def storage_file(bag: Path) -> Path:
    return next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))


def cut_copy(bag: Path, target: Path, size: int, keep_metadata: bool) -> Path:
    target.mkdir()
    data = storage_file(bag)
    (target / data.name).write_bytes(data.read_bytes()[:size])
    if keep_metadata:
        shutil.copy(bag / "metadata.yaml", target / "metadata.yaml")
    return target


def frames_read(bag: Path) -> list:
    return list(bags.read_frames(bag))


def mcap_frame_ends(path: Path) -> list[int]:
    """Byte offset where each frame's chunk ends, from the complete file's chunk index
    (the project's writer closes one chunk per frame)."""
    with path.open("rb") as f:
        summary = make_reader(f).get_summary()
    return sorted(c.chunk_start_offset + c.chunk_length for c in summary.chunk_indexes)


def sqlite_rows(path: Path) -> tuple[int, list[tuple[str, int, bytes, int]]]:
    """The page size and every row of a complete rosbag2 sqlite3 file in id order: topic,
    log time, data, and the highest page reading the row needs (the messages table's pages
    from its root down to the row's leaf, and the row's overflow pages), from SQLite's own
    ``dbstat`` table. A cut file can give the row back only if that page is whole."""
    with sqlite3.connect(path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        names = dict(db.execute("SELECT id, name FROM topics"))
        rows = db.execute("SELECT topic_id, timestamp, data FROM messages ORDER BY id").fetchall()
        pages = db.execute("SELECT path, pageno, pagetype, ncell FROM dbstat "
                           "WHERE name = 'messages'").fetchall()
    needed = []
    for leaf, _, kind, cells in pages:
        if kind == "leaf":
            above = [n for p, n, _, _ in pages if p.endswith("/") and leaf.startswith(p)]
            for cell in range(cells):
                chain = [n for p, n, _, _ in pages if p.startswith(f"{leaf}{cell:03x}+")]
                needed.append(max(above + chain))
    assert len(needed) == len(rows)
    return page_size, [(names[t], stamp, bytes(data), need)
                       for (t, stamp, data), need in zip(rows, needed)]


def test_a_cut_sqlite3_file_gives_exactly_its_whole_page_rows_byte_for_byte(original, tmp_path):
    """At and around every page boundary: what SQLite fills in with zeros past the cut
    (a partly written last page) is never given back as a message."""
    storage, bag = original
    if storage != "sqlite3":
        return
    page_size, rows = sqlite_rows(storage_file(bag))
    size = storage_file(bag).stat().st_size
    for k, offset in enumerate(sorted({min(size, page * page_size + extra)
                                       for page in range(6, size // page_size + 1)
                                       for extra in (0, 8, page_size // 2, page_size - 8)})):
        target = cut_copy(bag, tmp_path / f"cut{k}", offset, keep_metadata=True)
        expected = [(t, stamp, data) for t, stamp, data, need in rows
                    if need * page_size <= offset]
        try:
            with bags.open_bag(target) as source:
                got = list(source.messages())
        except DataError as exc:
            assert "no complete message" in str(exc)
            got = []
        assert len(got) == len(expected), offset
        assert got == expected, offset


def test_cut_at_a_seeded_sample_of_offsets_gives_a_prefix(original, drive, tmp_path):
    storage, bag = original
    frames = drive[1]
    size = storage_file(bag).stat().st_size
    rng = random.Random(18)
    offsets = sorted(rng.sample(range(1, size), 24) + [size - 1, size // 2])
    ends = mcap_frame_ends(storage_file(bag)) if storage == "mcap" else None
    page_size, rows = sqlite_rows(storage_file(bag)) if storage == "sqlite3" else (0, [])
    if ends is not None:
        assert len(ends) == FRAMES
    counts = []
    for k, offset in enumerate(offsets):
        target = cut_copy(bag, tmp_path / f"cut{k}", offset, keep_metadata=k % 2 == 0)
        try:
            read = frames_read(target)
        except DataError as exc:
            assert str(target) in str(exc) and "no complete" in str(exc)
            read = []
        if ends is not None:
            assert len(read) == sum(end <= offset for end in ends), offset
        for (stamp, image, truth), frame in zip(read, frames):
            assert stamp == frame.stamp_ns
            assert np.array_equal(image, frame.image) and np.array_equal(truth, frame.panoptic)
        counts.append(len(read))
        if storage == "sqlite3":     # frames whose image and truth rows are whole
            whole = Counter(stamp for t, stamp, _, need in rows
                            if need * page_size <= offset and t != bags.INFO_TOPIC)
            assert len(read) == sum(n == 2 for n in whole.values()), offset
    assert counts == sorted(counts), "more bytes never give fewer frames"
    assert counts[-1] >= FRAMES - 1 and counts[0] < FRAMES - 1


def test_metadata_missing_alone_reads_every_frame(original, drive, tmp_path):
    storage, bag = original
    target = cut_copy(bag, tmp_path / "nometa", storage_file(bag).stat().st_size, False)
    read = frames_read(target)
    assert [s for s, _, _ in read] == [f.stamp_ns for f in drive[1]]
    recovery = bags.recovery(target)
    assert recovery.reason == "metadata.yaml missing"
    assert recovery.messages == {"/camera/camera_info": FRAMES, "/camera/image_raw": FRAMES,
                                 "/gt/panoptic": FRAMES}
    assert recovery.last_stamp_ns == drive[1][-1].stamp_ns
    assert bags.recovery(bag) is None
    classes, divisor = bags.bag_metadata(target)      # from the copy inside the file
    assert (classes.to_dict(), divisor) == (drive[0].classes.to_dict(), drive[0].label_divisor)
    dataset = open_dataset("rosbag2", tmp_path)      # the dataset reader finds it too
    assert [f.stamp_ns for f in dataset] == [f.stamp_ns for f in drive[1]]


def test_lost_messages_are_counted_where_metadata_yaml_tells(original, tmp_path):
    storage, bag = original
    size = storage_file(bag).stat().st_size
    target = cut_copy(bag, tmp_path / "cut", size * 6 // 10, keep_metadata=True)
    recovery = bags.recovery(target)
    assert recovery.cut and storage_file(target).name in recovery.reason
    for topic, recovered in recovery.messages.items():
        assert 0 < recovered < FRAMES
        assert recovery.lost[topic] == FRAMES - recovered
    if storage == "sqlite3":
        page_size, rows = sqlite_rows(storage_file(bag))
        whole = Counter(t for t, _, _, need in rows if need * page_size <= size * 6 // 10)
        assert recovery.messages == dict(whole)


def _write_with_mcap_library(path: Path, frames: list, store) -> list:
    """A rosbag2-style mcap written by the mcap library (as ``ros2 bag record`` does):
    one chunk per frame, chunk CRCs recorded."""
    path.mkdir()
    with (path / "ros.mcap").open("wb") as f:
        writer = McapLibWriter(f, chunk_size=1)
        writer.start(profile="ros2", library="test")
        msgdef, _ = store.generate_msgdef(bags.IMAGE, ros_version=2)
        schema = writer.register_schema(bags.IMAGE, "ros2msg", msgdef.encode())
        image_id = writer.register_channel(bags.IMAGE_TOPIC, "cdr", schema)
        gt_id = writer.register_channel(bags.GT_TOPIC, "cdr", schema)
        factory = bags.BagWriter.__new__(bags.BagWriter)
        factory.store, factory.options = store, bags.BagOptions()
        for frame in frames:
            for channel, array, encoding in ((image_id, frame.image, "rgb8"),
                                             (gt_id, frame.panoptic.astype(np.int32), "32SC1")):
                msg = factory._image_msg(array, encoding, frame.stamp_ns)
                writer.add_message(channel, frame.stamp_ns, bytes(store.serialize_cdr(
                    msg, bags.IMAGE)), frame.stamp_ns)
        writer.finish()
    with (path / "ros.mcap").open("rb") as f:
        chunks = make_reader(f).get_summary().chunk_indexes
    return sorted(chunks, key=lambda c: c.chunk_start_offset)


def test_a_chunk_failing_its_crc_is_skipped_and_counted(drive, tmp_path):
    frames = drive[1]
    chunks = _write_with_mcap_library(tmp_path / "ros", frames, bags.typestore())
    assert len(chunks) == 2 * FRAMES and all(c.compression == "zstd" or c.compression == ""
                                             for c in chunks)
    data = bytearray((tmp_path / "ros" / "ros.mcap").read_bytes())
    damaged = chunks[5]                  # the ground truth of frame 2
    data[damaged.chunk_start_offset + damaged.chunk_length - 20] ^= 0xFF
    (tmp_path / "ros" / "ros.mcap").write_bytes(bytes(data))
    recovery = bags.recovery(tmp_path / "ros")
    assert recovery.damaged_chunks == 1 and "1 damaged chunk" in recovery.reason
    assert recovery.messages == {bags.IMAGE_TOPIC: FRAMES, bags.GT_TOPIC: FRAMES - 1}
    read = frames_read(tmp_path / "ros")       # frame 2 lost its ground truth: left out
    kept = [f for k, f in enumerate(frames) if k != 2]
    assert [s for s, _, _ in read] == [f.stamp_ns for f in kept]
    for (_, image, truth), frame in zip(read, kept):
        assert np.array_equal(image, frame.image) and np.array_equal(truth, frame.panoptic)


def test_repair_writes_a_bag_rosbags_reads_with_the_same_messages(original, tmp_path):
    storage, bag = original
    size = storage_file(bag).stat().st_size
    target = cut_copy(bag, tmp_path / "cut", size * 7 // 10, keep_metadata=True)
    recovered = bags.recovery(target).messages
    out = tmp_path / "repaired"
    assert _cli("bag", "repair", target, out).returncode == 0
    with Reader(bag) as reader:
        originals = [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]
    with Reader(out) as reader:
        assert reader.message_count == sum(recovered.values())
        repaired = [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]
    seen, expected = Counter(), []
    for message in originals:
        seen[message[0]] += 1
        if seen[message[0]] <= recovered[message[0]]:
            expected.append(message)
    assert repaired == expected and 0 < len(repaired) < len(originals)
    info = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == storage
    original_info = yaml.safe_load((bag / "metadata.yaml").read_text())
    assert info["custom_data"] == original_info["rosbag2_bagfile_information"]["custom_data"]


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vps_ros.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_bag_info_says_what_is_there_and_whether_it_is_complete(original, tmp_path):
    storage, bag = original
    whole = _cli("bag", "info", bag)
    assert whole.returncode == 0, whole.stderr
    assert "Complete:   yes" in whole.stdout and f"Storage:    {storage}" in whole.stdout
    assert "/camera/image_raw    sensor_msgs/msg/Image  6" in whole.stdout
    assert "Duration:   0.500 s" in whole.stdout
    target = cut_copy(bag, tmp_path / "nometa", storage_file(bag).stat().st_size, False)
    cut = _cli("bag", "info", target)
    assert cut.returncode == 0 and "Complete:   no: metadata.yaml missing" in cut.stdout
    assert cut.stderr.count("\n") == 1 and "recovered bag" in cut.stderr


def _garbage(path: Path, head: bytes) -> None:
    path.write_bytes(head + random.Random(7).randbytes(200_000))


@pytest.mark.parametrize("case", ["random.mcap", "magic_then_garbage.mcap", "garbage.db3",
                                  "sqlite_header_then_garbage.db3", "cut_early_mcap",
                                  "cut_early_sqlite3", "two_formats", "empty_folder"])
def test_bad_input_is_one_line_and_exit_2(case, drive, tmp_path, capsys):
    target = tmp_path / "bag"
    if case.startswith("cut_early"):
        dataset, frames = drive
        bags.record(frames, tmp_path / "whole", dataset.classes, 1000,
                    bags.BagOptions(storage=case.split("_")[-1]))
        cut_copy(tmp_path / "whole", target, 700, keep_metadata=True)
    else:
        target.mkdir()
    if case == "random.mcap":
        _garbage(target / "x.mcap", b"")
    elif case == "magic_then_garbage.mcap":
        _garbage(target / "x.mcap", b"\x89MCAP0\r\n")
    elif case == "garbage.db3":
        _garbage(target / "x.db3", b"")
    elif case == "sqlite_header_then_garbage.db3":
        _garbage(target / "x.db3", b"SQLite format 3\x00")
    elif case == "two_formats":
        _garbage(target / "a.mcap", b"\x89MCAP0\r\n")
        _garbage(target / "b.db3", b"SQLite format 3\x00")
    for args in (["bag", "info", str(target)], ["bag", "repair", str(target), str(tmp_path / "o")]):
        assert cli.main(args) == 2, case
        err = capsys.readouterr().err
        assert err.startswith(f"vps-ros bag: error: {target}")
        assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    if case == "two_formats":
        assert "two formats" in err
    if case.startswith("cut_early"):
        assert "no complete message to recover" in err


def test_repair_skips_a_damaged_chunk_inside_a_bag_whose_end_is_intact(drive, tmp_path):
    dataset, frames = drive
    bag = tmp_path / "drive"
    bags.record(frames, bag, dataset.classes, 1000)
    data = storage_file(bag)
    with data.open("rb") as f:
        chunks = sorted(make_reader(f).get_summary().chunk_indexes,
                        key=lambda c: c.chunk_start_offset)
    raw = bytearray(data.read_bytes())
    first_record = chunks[2].chunk_start_offset + 49 + 1   # uncompressed chunk: its records
    raw[first_record:first_record + 8] = b"\xff" * 8           # a record length past the end
    data.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="truncated or corrupt"):
        frames_read(bag)                    # rosbags, trusting the intact index, stops
    assert cli.main(["bag", "repair", str(bag), str(tmp_path / "repaired")]) == 0
    with Reader(tmp_path / "repaired") as reader:
        assert reader.topics[bags.IMAGE_TOPIC].msgcount == FRAMES - 1
    read = frames_read(tmp_path / "repaired")
    assert [s for s, _, _ in read] == [f.stamp_ns for k, f in enumerate(frames) if k != 2]


def test_a_repair_that_cannot_write_blames_the_output_and_leaves_no_half_bag(
        original, tmp_path, monkeypatch):
    """A full disk while writing OUT is the OS's error about OUT, not "IN is corrupt",
    and OUT, created by the repair, is removed rather than left without metadata."""
    from rosbags.rosbag2 import Writer
    from vps_ros.commands.bag import repair
    _, bag = original

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Writer, "write", full_disk)
    out = tmp_path / "repaired"
    with pytest.raises(OSError, match="No space left on device") as raised:
        repair(bag, out)
    assert not isinstance(raised.value, DataError)
    assert not out.exists()
