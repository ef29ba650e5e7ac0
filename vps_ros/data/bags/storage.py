"""Opening a rosbag2 for reading, whole or damaged, as one stream of raw messages.

A complete bag (``metadata.yaml`` and intact storage files) is read with ``rosbags``.
A bag that a killed recorder left behind is read from what is on disk, nothing invented:

- a folder without ``metadata.yaml`` is read from its storage files (``*.mcap`` or
  ``*.db3``, in name order);
- an mcap file is read record by record with the ``mcap`` library's streaming reader,
  which needs no summary or footer, up to the last complete record; a chunk whose CRC
  does not match (where the writer recorded one) or whose records do not parse is
  skipped and counted;
- a sqlite3 file is read row by row in insertion order as far as SQLite can (a cut file
  is opened without trusting the page count in its header); rows it cannot read, and
  rows on a partly written last page, are skipped and counted.

What was recovered is a :class:`Recovery`; :func:`open_bag` logs one warning line per
recovered bag and process.
"""
from __future__ import annotations

import logging
import sqlite3
import struct
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Iterator

import yaml
from mcap.exceptions import EndOfFile, McapError
from mcap.records import Channel, Chunk, Footer, Message, Metadata, Schema
from mcap.stream_reader import StreamReader, breakup_chunk
from rosbags.rosbag2 import Reader, ReaderError
from rosbags.serde import SerdeError

from ...errors import DataError

log = logging.getLogger(__name__)

SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}
# What a damaged bag makes rosbags (and the sqlite3/struct layers under it) raise.
_BAG_ERRORS = (ReaderError, SerdeError, sqlite3.Error, struct.error, EOFError, ValueError,
               KeyError, IndexError, AssertionError, RuntimeError, OSError, OverflowError,
               MemoryError)
# What a damaged mcap record makes the mcap library (and zstd/lz4 under it) raise.
_MCAP_ERRORS = (McapError, struct.error, EOFError, ValueError, UnicodeDecodeError, MemoryError,
                OverflowError, KeyError)
_SQLITE_MAGIC = b"SQLite format 3\x00"
_MCAP_MAGIC = b"\x89MCAP0\r\n"


@dataclass(frozen=True)
class Topic:
    name: str
    msgtype: str
    msgdef: str = ""          # the recorded message definition, "" where none was recorded
    digest: str = ""          # its RIHS01 hash, "" where none was recorded


@dataclass
class Recovery:
    """What was read from a bag that was not whole."""

    reason: str                               # what was missing or cut
    storage: str
    messages: dict[str, int]                  # topic -> messages recovered
    lost: dict[str, int] | None               # topic -> messages lost, where known
    damaged_chunks: int = 0
    unreadable_rows: int = 0
    last_stamp_ns: int | None = None          # log time of the last recovered message
    cut: bool = False                         # the storage ends before its end record
    # Log time of the last message read before the first loss (cut, damaged chunk,
    # unreadable row); None when no message was lost on the way.
    intact_until_ns: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "storage": self.storage, "messages": self.messages,
                "lost": self.lost, "damaged_chunks": self.damaged_chunks,
                "unreadable_rows": self.unreadable_rows, "last_stamp_ns": self.last_stamp_ns}

    def line(self, path: Path) -> str:
        counts = ", ".join(f"{t} {n}" + (f" (lost {self.lost[t]})" if self.lost and
                                         self.lost.get(t) else "")
                           for t, n in self.messages.items())
        damage = "".join([f"; {self.damaged_chunks} damaged chunk(s) skipped"
                          if self.damaged_chunks else "",
                          f"; {self.unreadable_rows} unreadable row(s) skipped"
                          if self.unreadable_rows else ""])
        return f"{path}: recovered bag ({self.reason}): messages {counts}{damage}"


@dataclass
class BagSource:
    """One bag opened for reading: its topics and message counts, the custom data it
    recorded (``custom_data`` of the metadata) and its messages in log order."""

    path: Path
    storage: str
    topics: dict[str, Topic]
    counts: dict[str, int]
    custom: dict[str, str]
    start_ns: int | None
    end_ns: int | None
    recovery: Recovery | None
    _reader: Any = field(default=None, repr=False)
    _files: list[Path] = field(default_factory=list, repr=False)

    def messages(self, topics: Collection[str] | None = None) -> Iterator[tuple[str, int, bytes]]:
        """(topic, log time ns, serialized message) of the bag's messages on ``topics``
        (default all), in log order (a recovered bag: in the order they were written)."""
        wanted = set(self.topics) if topics is None else set(topics)
        if self._reader is not None:
            conns = [c for c in self._reader.connections if c.topic in wanted]
            read = dict.fromkeys(sorted({c.topic for c in conns}), 0)
            try:
                for conn, stamp, raw in self._reader.messages(connections=conns):
                    read[conn.topic] += 1
                    yield conn.topic, stamp, raw
            except _BAG_ERRORS as exc:
                raise _unreadable(self.path, exc) from None
            self._check_read(read)
            return
        scan = _mcap_scan if self.storage == "mcap" else _sqlite_scan
        for path in self._files:
            try:
                yield from scan(path, _Tally(), wanted)
            except _BAG_ERRORS as exc:
                raise _unreadable(self.path, exc) from None

    def _check_read(self, read: dict[str, int]) -> None:
        """Every message the bag's index (metadata.yaml, the storage's summary) declares on
        each topic read: a shortfall (rows gone, a storage that lost messages without
        looking damaged) is a DataError with the counts, never a quietly shorter drive."""
        short = [f"{topic}: read {n} of {self.counts.get(topic, 0)}"
                 for topic, n in read.items() if n < self.counts.get(topic, 0)]
        if short:
            raise DataError(f"{self.path}: fewer messages than its index declares ("
                            f"{'; '.join(short)}); the storage lost messages or is damaged "
                            "(vps-ros bag repair copies what can be read)")


def _unreadable(path: Path, exc: BaseException) -> DataError:
    return DataError(f"{path}: cannot read the bag, it is truncated or corrupt "
                     f"({type(exc).__name__}: {exc})")


def storage_files(path: Path) -> list[Path]:
    """The storage files of a bag folder (or the file itself), in name order; a DataError
    when there are none or when they are of two formats."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: bag not found")
    if path.is_file():
        if path.suffix not in SUFFIXES:
            raise DataError(f"{path}: not a rosbag2 storage file (expected {', '.join(SUFFIXES)})")
        return [path]
    files = sorted(p for p in path.iterdir() if is_storage_file(p))
    kinds = sorted({SUFFIXES[p.suffix] for p in files})
    if not files:
        raise DataError(f"{path}: not a rosbag2 bag: no metadata.yaml and no storage files "
                        f"({', '.join('*' + s for s in SUFFIXES)})")
    if len(kinds) > 1:
        raise DataError(f"{path}: storage files of two formats in one bag ({' and '.join(kinds)}:"
                        f" {', '.join(p.name for p in files)}); keep one format per bag folder")
    return files


def is_storage_file(path: Path) -> bool:
    return path.suffix in SUFFIXES and path.is_file()


@contextmanager
def open_bag(path: Path, stream: bool = False) -> Iterator[BagSource]:
    """The bag ``path`` (a bag folder or one storage file) opened for reading; a damaged
    bag is recovered (see the module's doc). ``stream``: read record by record even when
    the bag looks whole (a chunk damaged in the middle of a bag with an intact end stops
    ``rosbags``, not the streaming reader). Anything unreadable is a DataError naming it."""
    path = Path(path)
    files = storage_files(path)
    storage = SUFFIXES[files[0].suffix]
    reader = None
    if (not stream and path.is_dir() and (path / "metadata.yaml").is_file()
            and not _looks_cut(files, storage)):
        reader = Reader(path)
        try:
            reader.open()
        except _BAG_ERRORS as exc:
            if not _recoverable_error(exc):
                raise _unreadable(path, exc) from None
            reader = None
    try:
        try:
            source = recovered(path) if reader is None else \
                _complete_source(path, storage, reader)
        except DataError:
            raise
        except _BAG_ERRORS as exc:
            raise _unreadable(path, exc) from None
        yield source      # errors of the caller's own code pass through as they are
    finally:
        if reader is not None:
            reader.close()


def _recoverable_error(exc: BaseException) -> bool:
    """rosbags refuses a cut mcap at its footer and a cut sqlite3 file as malformed:
    those are read again record by record."""
    text = str(exc).lower()
    return any(s in text for s in ("magic", "malformed", "truncated", "footer", "summary",
                                   "not a database", "unexpected end"))


def _complete_source(path: Path, storage: str, reader: Reader) -> BagSource:
    topics, counts = {}, {}
    for conn in reader.connections:
        topics[conn.topic] = Topic(conn.topic, conn.msgtype, conn.msgdef.data, conn.digest)
        counts[conn.topic] = counts.get(conn.topic, 0) + conn.msgcount
    custom = {str(k): str(v) for k, v in (reader.storage.metadata.custom or {}).items()}
    start, end = (reader.start_time, reader.end_time - 1) if reader.message_count else (None, None)
    return BagSource(path, storage, topics, dict(sorted(counts.items())),
                     custom, start, end, None, reader)


def _looks_cut(files: list[Path], storage: str) -> bool:
    """Whether a storage file is visibly cut: an mcap without its closing magic, a sqlite3
    file shorter than the pages its header counts, or left with a hot journal."""
    for path in files:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(100)
            if storage == "mcap":
                f.seek(max(0, size - len(_MCAP_MAGIC)))
                if size < 2 * len(_MCAP_MAGIC) or f.read() != _MCAP_MAGIC:
                    return True
            else:
                if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
                    return True
                page = int.from_bytes(head[16:18], "big") or 65536
                if int.from_bytes(head[28:32], "big") * page > size:
                    return True
                if Path(f"{path}-journal").exists() or Path(f"{path}-wal").exists():
                    return True
    return False


_CACHE: dict[tuple, BagSource] = {}


def recovered(path: Path) -> BagSource:
    """The bag read from its storage files alone (cached per file sizes and times; the
    warning line is logged once per bag and process)."""
    path = Path(path)
    files = storage_files(path)
    key = (str(path.resolve()),) + tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns)
                                         for p in files)
    if key not in _CACHE:
        _CACHE[key] = _recover(path, files)
        if _CACHE[key].recovery is not None:
            log.warning(_CACHE[key].recovery.line(path))
    return _CACHE[key]


class _Tally:
    """What one pass over a storage file found."""

    def __init__(self) -> None:
        self.topics: dict[str, Topic] = {}
        self.counts: Counter = Counter()
        self.custom: dict[str, str] = {}
        self.expected: dict[str, int] | None = None
        self.first: int | None = None
        self.last: int | None = None
        self.latest: int | None = None       # log time of the message read last
        self.intact_until: int | None = None
        self.damaged = 0
        self.unreadable = 0
        self.cut: str | None = None          # why the file ended early, None if it did not

    def message(self, topic: str, stamp: int) -> None:
        self.counts[topic] += 1
        self.first = stamp if self.first is None else min(self.first, stamp)
        self.last = stamp if self.last is None else max(self.last, stamp)
        self.latest = stamp

    def loss(self) -> None:
        """Messages were lost here (a cut, a damaged chunk, an unreadable row)."""
        if self.intact_until is None:
            self.intact_until = -1 if self.latest is None else self.latest


def _recover(path: Path, files: list[Path]) -> BagSource:
    storage = SUFFIXES[files[0].suffix]
    tally = _Tally()
    cuts = []
    for file in files:
        scan = _mcap_scan if storage == "mcap" else _sqlite_scan
        for _ in scan(file, tally, None):
            pass
        if tally.cut:
            cuts.append(f"{file.name} {tally.cut}")
            tally.cut = None
    if not sum(tally.counts.values()):
        what = "; ".join(cuts) or "it holds no messages"
        raise DataError(f"{path}: no complete message to recover ({what})")
    reasons = []
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        reasons.append("metadata.yaml missing")
    reasons += cuts
    if tally.damaged:
        reasons.append(f"{tally.damaged} damaged chunk(s)")
    if tally.unreadable:
        reasons.append(f"{tally.unreadable} unreadable row(s)")
    expected = _expected_counts(path)
    counts = {t: tally.counts.get(t, 0) for t in sorted(tally.topics)}
    lost = None if expected is None else {t: max(0, n - counts.get(t, 0))
                                          for t, n in sorted(expected.items())}
    if lost and any(lost.values()) and not reasons:
        reasons.append("fewer messages than metadata.yaml counts")
    recovery = Recovery("; ".join(reasons), storage, counts, lost, tally.damaged,
                        tally.unreadable, tally.last, cut=bool(cuts),
                        intact_until_ns=tally.intact_until) if reasons else None
    return BagSource(path, storage, dict(tally.topics), counts,
                     tally.custom or _yaml_custom(path), tally.first, tally.last, recovery,
                     None, files)


def _yaml_custom(path: Path) -> dict[str, str]:
    info = _metadata_yaml(path)
    return dict(info.get("custom_data") or {}) if info else {}


def _metadata_yaml(path: Path) -> dict | None:
    meta = path / "metadata.yaml" if path.is_dir() else None
    if meta is None or not meta.is_file():
        return None
    try:
        data = yaml.safe_load(meta.read_text())
        return data.get("rosbag2_bagfile_information") or None
    except (yaml.YAMLError, AttributeError, UnicodeDecodeError):
        return None


def _expected_counts(path: Path) -> dict[str, int] | None:
    info = _metadata_yaml(path)
    try:
        return {t["topic_metadata"]["name"]: int(t["message_count"])
                for t in info["topics_with_message_count"]} if info else None
    except (KeyError, TypeError, ValueError):
        return None


def _custom_of(text: str) -> dict[str, str]:
    """custom_data of the rosbag2 metadata that a writer stored inside its storage file."""
    try:
        data = yaml.safe_load(text)
        if isinstance(data, dict) and "rosbag2_bagfile_information" in data:
            data = data["rosbag2_bagfile_information"]
        return {str(k): str(v) for k, v in ((data or {}).get("custom_data") or {}).items()}
    except (yaml.YAMLError, AttributeError):
        return {}


def _mcap_scan(path: Path, tally: _Tally, wanted: set[str] | None
               ) -> Iterator[tuple[str, int, bytes]]:
    """Messages of an mcap file read record by record; stops at the first record that
    does not parse (the cut), skips chunks that fail their CRC or do not parse."""
    schemas: dict[int, Schema] = {}
    channels: dict[int, str] = {}
    with path.open("rb") as f:
        if f.read(len(_MCAP_MAGIC)) != _MCAP_MAGIC:
            raise DataError(f"{path}: not an mcap file (no MCAP magic at its start)")
        f.seek(0)
        size = path.stat().st_size
        records = StreamReader(f, emit_chunks=True, record_size_limit=size).records
        while True:   # the reader ends after the footer, where this loop stops already
            offset = f.tell()
            try:
                record = next(records)
            except EndOfFile:
                tally.cut = f"cut at byte {offset} of {size}"
                tally.loss()
                break
            except _MCAP_ERRORS as exc:
                tally.cut = f"damaged at byte {offset} of {size} ({type(exc).__name__})"
                tally.loss()
                break
            if isinstance(record, Chunk):
                try:
                    inner = _chunk_records(record)
                except Exception:  # a damaged chunk: whatever its decompressor raises
                    tally.damaged += 1
                    tally.loss()
                    continue
            else:
                inner = [record]
            for item in inner:
                if isinstance(item, Schema):
                    schemas[item.id] = item
                elif isinstance(item, Channel):
                    schema = schemas.get(item.schema_id)
                    channels[item.id] = item.topic
                    if item.topic not in tally.topics and schema is not None:
                        tally.topics[item.topic] = Topic(item.topic, schema.name,
                                                         schema.data.decode("utf-8", "replace"))
                elif isinstance(item, Message) and item.channel_id in channels:
                    topic = channels[item.channel_id]
                    if topic in tally.topics:
                        tally.message(topic, item.log_time)
                        if wanted is not None and topic in wanted:
                            yield topic, item.log_time, item.data
                elif isinstance(item, Metadata) and item.name == "rosbag2":
                    tally.custom.update(_custom_of(item.metadata.get("serialized_metadata", "")))
            if isinstance(record, Footer):
                break


def _chunk_records(chunk: Chunk) -> list:
    """The records of a chunk; its CRC checked where the writer recorded one."""
    if chunk.compression not in ("", "zstd", "lz4"):
        raise ValueError(f"unknown chunk compression {chunk.compression!r}")
    return breakup_chunk(chunk, validate_crc=True)


def _sqlite_scan(path: Path, tally: _Tally, wanted: set[str] | None
                 ) -> Iterator[tuple[str, int, bytes]]:
    """Messages of a rosbag2 sqlite3 file, row by row in insertion order, as far as SQLite
    can read them (``writable_schema`` lets it open a file shorter than its header says;
    the connection is read-only and immutable, nothing is written). Rows that touch a
    partly written last page are counted unreadable: SQLite fills the missing bytes of
    that page with zeros and would return them as data."""
    with path.open("rb") as f:
        header = f.read(100)
    if not header.startswith(_SQLITE_MAGIC):
        raise DataError(f"{path}: not a sqlite3 file (no SQLite header)")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        conn.execute("PRAGMA writable_schema=ON")
        topic_ids = _sqlite_topics(conn, path, tally)
        ids = _sqlite_row_ids(conn, tally)
        torn = _rows_on_partial_page(conn, path, header, ids)
        for row_id in ids:
            try:
                row = None if row_id in torn else conn.execute(
                    "SELECT topic_id, timestamp, data FROM messages WHERE id=?",
                    (row_id,)).fetchone()
            except sqlite3.DatabaseError:
                row = None
            topic = topic_ids.get(row[0]) if row else None
            if topic is None:
                tally.unreadable += 1
                tally.loss()
                continue
            tally.message(topic, int(row[1]))
            if wanted is not None and topic in wanted:
                yield topic, int(row[1]), bytes(row[2])
        if tally.cut:
            tally.loss()
    finally:
        conn.close()


def _sqlite_row_ids(conn: sqlite3.Connection, tally: _Tally) -> list[int]:
    """Ids of the messages table in order, as far as its B-tree can be walked. Each query
    is a fresh statement: one scan that meets a lost page also loses the row it had
    already stepped to, so the last batch is retried a row at a time."""
    ids: list[int] = []
    batch = 512
    while True:
        after = ids[-1] if ids else -(2 ** 63)
        try:
            rows = conn.execute("SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                                (after, batch)).fetchall()
        except sqlite3.DatabaseError as exc:
            if batch > 1:
                batch = 1
                continue
            tally.cut = f"readable up to row {ids[-1] if ids else 0} ({exc})"
            return ids
        if not rows:
            return ids
        for (row_id,) in rows:
            if row_id <= after:      # a zeroed cell: SQLite's seek no longer moves on
                tally.cut = f"readable up to row {after} (row ids out of order)"
                return ids
            ids.append(row_id)
            after = row_id


def _rows_on_partial_page(conn: sqlite3.Connection, path: Path, header: bytes,
                          ids: list[int]) -> set[int]:
    """Ids of the rows whose B-tree cell or overflow chain uses the file's partly written
    last page, from SQLite's ``dbstat`` table: a leaf's cells follow its ``path`` in
    depth-first order, the order of ``ids``. ``dbstat`` stops at a B-tree page it cannot
    parse (it lists overflow pages without parsing them): the rows past the last leaf it
    listed count as torn."""
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    size = path.stat().st_size
    if not page_size or size % page_size == 0:
        return set()
    partial = size // page_size + 1
    pages, complete = _dbstat_pages(conn)
    torn: set[int] = set()
    start = 0
    leaf_start = 0
    for page_path, pageno, kind, cells in pages:
        if kind == "leaf":
            leaf_start, start = start, start + cells
        if pageno != partial:
            continue
        if kind == "overflow":
            cell = int(page_path.rsplit("/", 1)[1].split("+")[0], 16)
            torn.update(ids[leaf_start + cell:leaf_start + cell + 1])
        elif kind == "leaf":
            torn.update(ids[leaf_start:start])
        else:
            torn.update(ids[start:_end_of_subtree(pages, page_path, start)])
    if not complete:
        torn.update(ids[start:])
    return torn


def _dbstat_pages(conn: sqlite3.Connection) -> tuple[list[tuple[str, int, str, int]], bool]:
    """The messages table's pages in ``dbstat`` order, and whether the walk got to the end."""
    pages = []
    try:
        cursor = conn.execute("SELECT path, pageno, pagetype, ncell FROM dbstat "
                              "WHERE name = 'messages'")
        for row in iter(cursor.fetchone, None):
            pages.append(row)
    except sqlite3.DatabaseError:
        return pages, False
    return pages, True


def _end_of_subtree(pages: list[tuple[str, int, str, int]], root: str, start: int) -> int:
    """Index in ``ids`` just past the last row under the interior page at ``root``."""
    end = start
    seen = False
    for page_path, _, kind, cells in pages:
        seen = seen or page_path == root
        if seen and kind == "leaf" and page_path.startswith(root):
            end += cells
    return end


def _sqlite_topics(conn: sqlite3.Connection, path: Path, tally: _Tally) -> dict[int, str]:
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(topics)")}
        digest = "type_description_hash" if "type_description_hash" in columns else "''"
        rows = conn.execute(f"SELECT id, name, type, {digest} FROM topics").fetchall()
    except sqlite3.DatabaseError as exc:
        raise DataError(f"{path}: no complete message to recover (its topics table is "
                        f"unreadable: {exc})") from None
    definitions = {}
    try:
        definitions = dict(conn.execute(
            "SELECT topic_type, encoded_message_definition FROM message_definitions"))
        tally.custom.update(next((_custom_of(text) for (text,) in conn.execute(
            "SELECT metadata FROM metadata ORDER BY id DESC")), {}))
    except sqlite3.DatabaseError:
        pass
    ids = {}
    for topic_id, name, msgtype, rihs in rows:
        ids[topic_id] = name
        tally.topics.setdefault(name, Topic(name, msgtype, definitions.get(msgtype, ""),
                                            rihs or ""))
    return ids
