"""``vps-ros replay`` of many drives (a fleet): one report whose VPQ / STQ are the
dataset's, not an average of per-drive figures.

Each bag is one job for :func:`score_drive`, a plain function (a bag in, a small
dict out: the metric core's statistics of each camera sequence, counters, a latency
histogram; never frames) that an executor of :mod:`.executors` runs here, in
processes or on Ray. The driver writes each drive's dict to ``OUT/drives/<drive>.json``
as it comes back (so ``--resume`` skips it later), then adds the statistics up one
file at a time in drive-name order: the same sums, bit for bit, as evaluating all the
sequences in one process in that order (``MetricStats.merge``), whichever executor
computed them and in whatever order they finished.

A drive is named after its bag (the folder's name, or the .mcap / .db3 file's without
the extension); its camera streams are the sequences ``<drive>/<camera>``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from ..data import bags
from ..data.bags.storage import SUFFIXES
from ..errors import ConfigError, DataError, VpsRosError
from ..model import MaskSegmenter
from ..pipeline import PipelineConfig, load_segmenter
from .executors import open_executor
from .fleet_report import fleet_document, write_fleet_report
from .fleet_totals import merge_drives
from .offline import OfflineEngine
from .records import begin_run, end_run, write_json_atomic
from .runner import (ReplayOptions, pipeline_config, replay_drive, run_settings, set_up_bag,
                     settings_changes)
from .statistics import drive_name, drive_statistics

DRIVES_DIR = "drives"
# Fields of a drive's dict that its row in the report carries (``partial`` and
# ``recovered`` only when the drive's replay reports them).
ROW_KEYS = ("drive", "bag", "error", "frames", "annotated_frames", "dropped_frames", "VPQ",
            "STQ", "AQ", "SQ", "latency_ms", "id_switches", "recoveries", "wall_s")
OPTIONAL_ROW_KEYS = ("partial", "recovered")


@dataclass(frozen=True)
class FleetOptions:
    bags: list[Path]            # one path per drive (see :func:`expand_bags`)
    replay: ReplayOptions       # what every drive shares: cameras, model, windows, out
    workers: int | None = None
    ray: str | None = None      # "local", or a cluster address
    cpus_per_drive: float = 1.0
    gpus_per_drive: float = 0.0
    resume: bool = False


@dataclass(frozen=True)
class DriveJob:
    name: str
    bag: Path
    options: ReplayOptions


def expand_bags(arguments: list[str]) -> list[Path]:
    """Bags of the command line: a bag, a folder of bags, or ``@LIST`` (a file with one
    path a line, relative ones from the list's folder; blank and ``#`` lines skipped)."""
    found: list[Path] = []
    for argument in arguments:
        if not argument.startswith("@"):
            found += _bags_at(Path(argument), "")
            continue
        listing = Path(argument[1:])
        if not listing.is_file():
            raise DataError(f"{listing}: list of bags not found")
        for number, line in enumerate(listing.read_text().splitlines(), start=1):
            line = line.strip()
            if line and not line.startswith("#"):
                path = Path(line) if os.path.isabs(line) else listing.parent / line
                found += _bags_at(path, f"{listing}:{number}: ")
    return found


def _bags_at(path: Path, where: str) -> list[Path]:
    try:
        found = bags.find_bags(path)
    except DataError as exc:
        raise DataError(f"{where}{exc}") from None
    for bag in found:
        if bag.is_file() and bag.suffix not in SUFFIXES:
            raise DataError(f"{where}{bag}: not a bag (a rosbag2 is a folder with "
                            "metadata.yaml, or an .mcap or .db3 file)")
    return found


def name_drives(paths: list[Path]) -> dict[str, Path]:
    """Drive name -> bag, sorted by name; a DataError when two bags share a name."""
    named: dict[str, Path] = {}
    for path in paths:
        name = drive_name(path)
        if name in named:
            if Path(os.path.realpath(named[name])) == Path(os.path.realpath(path)):
                raise DataError(f"{path}: this bag is given twice")
            raise DataError(f"two bags are named {name!r}: {named[name]} and {path}; a drive "
                            "is named after its bag (folder name, or file name without "
                            ".mcap/.db3) and its sequences <drive>/<camera>, so rename one")
        named[name] = path
    return dict(sorted(named.items()))


_SEGMENTERS: dict[PipelineConfig, MaskSegmenter] = {}


def _segmenter(config: PipelineConfig) -> MaskSegmenter:
    """One segmenter per worker process and configuration, kept for its next drives."""
    if config not in _SEGMENTERS:
        _SEGMENTERS.clear()
        _SEGMENTERS[config] = load_segmenter(config)
    return _SEGMENTERS[config]


def score_drive(job: DriveJob) -> dict[str, Any]:
    """Replay one drive offline and return its sufficient statistics as plain data:
    ``sequences`` (``<drive>/<camera>`` -> ``MetricStats.state_dict()``), ``latency``
    (histogram), the class table, label divisor and windows they were computed with,
    and the drive's own figures for its row. A fault of the drive (truncated bag,
    missing topic, bad frame) is its ``error``; no statistics are returned then."""
    options = job.options
    started = time.perf_counter()
    result: dict[str, Any] = {"drive": job.name, "bag": str(job.bag), "error": None}
    scorer = None
    try:
        setup = set_up_bag(options, job.bag)
        if setup.recovered is not None:
            result.update(partial=True, recovered=setup.recovered.as_dict())
        engine = OfflineEngine(setup.config, options.cameras, _segmenter(setup.config))
        scorer = setup.scorer(options, engine.classes)
        replay_drive(options, job.bag, setup, engine, scorer)
    except VpsRosError as exc:
        result["error"] = str(exc) or type(exc).__name__
    result["wall_s"] = time.perf_counter() - started
    if scorer is None:
        return result
    summary = scorer.results()["all"]
    metrics = summary.pop("metrics") or {}
    result.update({k: v for k, v in summary.items() if k != "metrics_note"})
    result.update({k: metrics.get(k) for k in ("VPQ", "STQ", "AQ", "SQ")})
    if result["error"] is None:
        result.update(drive_statistics(job.name, scorer))
    return result


def row_of(result: dict[str, Any]) -> dict[str, Any]:
    """A drive's row of the report: its figures, no statistics."""
    row = {key: result.get(key) for key in ROW_KEYS}
    row.update({key: result[key] for key in OPTIONAL_ROW_KEYS if key in result})
    return row


def settings_of(options: ReplayOptions) -> dict[str, Any]:
    """What decides a drive's statistics (:func:`.runner.run_settings`): results computed
    with other settings are not resumed."""
    return run_settings(options)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _resumable(folder: Path, drives: dict[str, Path], settings: dict[str, Any]
               ) -> dict[str, dict[str, Any]]:
    """Rows of the drives already scored (without error) with these settings."""
    rows = {}
    for name in drives:
        data = _read(folder / f"{name}.json")
        if data is None or data.get("error") is not None:
            continue
        if data.get("settings") != settings:
            raise ConfigError(f"{folder / (name + '.json')}: computed with other settings "
                              f"({settings_changes(data.get('settings') or {}, settings)}); "
                              "leave out --resume or give another --out")
        rows[name] = row_of(data)
    return rows


def run_fleet(fleet: FleetOptions) -> tuple[dict[str, Any], int]:
    """Score every drive and write the fleet report; returns (metrics.json content,
    number of drives that failed)."""
    drives = name_drives(fleet.bags)
    options = fleet.replay
    out = options.out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    pipeline_config(options, None)             # a bad parameters file stops here
    settings = settings_of(options)
    started = time.perf_counter()
    executor = open_executor(fleet.workers, fleet.ray, fleet.cpus_per_drive,
                             fleet.gpus_per_drive)
    try:
        folder = out / DRIVES_DIR
        rows = _resumable(folder, drives, settings) if fleet.resume else {}
        begin_run(out)
        folder.mkdir(parents=True, exist_ok=True)
        for name in drives:
            if name not in rows:
                (folder / f"{name}.json").unlink(missing_ok=True)
        jobs = [DriveJob(name, bag, options) for name, bag in drives.items() if name not in rows]
        resumed = len(rows)
        with tqdm(total=len(drives), initial=resumed, desc="replay fleet", unit="drive",
                  file=sys.stderr, disable=None if options.progress else True) as bar:
            for result in _results(executor.run(score_drive, jobs)):
                result["settings"] = settings
                write_json_atomic(folder / f"{result['drive']}.json", result)
                rows[result["drive"]] = row_of(result)
                bar.update(1)
    except KeyboardInterrupt:
        print(f"vps-ros replay: stopped; the finished drives are in {out / DRIVES_DIR}: run "
              "the same command with --resume to go on", file=sys.stderr)
        raise
    finally:
        executor.close()
    run = {"mode": "offline", "executor": executor.description, "bags": len(drives),
           "resumed_drives": resumed, "wall_s": time.perf_counter() - started,
           "model": options.model or None, "params": settings["params"],
           "camera_topics": settings["cameras"]}
    totals = merge_drives(folder, drives, rows)
    document = fleet_document(totals, rows, run)
    write_fleet_report(document, out)
    end_run(out)
    return document, document["drives_failed"]


def _results(outcomes: Iterator[tuple[DriveJob, dict | None, str | None]]
             ) -> Iterator[dict[str, Any]]:
    for job, result, failure in outcomes:
        yield result if failure is None else {"drive": job.name, "bag": str(job.bag),
                                              "error": failure}
