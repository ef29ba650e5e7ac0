"""``vps-ros compare``: run B against run A on the same drives, with a paired bootstrap.

Deltas B - A are computed exactly from the runs' per-drive statistics (the metric
core's merge, as the runs' own reports). Their uncertainty: ``scipy.stats.bootstrap``
with ``paired=True`` resamples the sampling units (drives; for one drive, blocks of
frames, see :mod:`.compare_runs`) with replacement, the same units for both runs, and
recomputes every metric of each run from the summed statistics of the resample
(:mod:`vps_ros.metrics.resampled`); the 95 % interval is the percentile interval of the
resampled deltas. A verdict per metric: better / worse when the interval lies entirely
on one side of 0, else no detectable change.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ..errors import ConfigError, DataError
from ..metrics import resampled
from .compare_runs import COUNTS, Run, Units, block_length, block_units, check_comparable, \
    drive_stats, drive_units, load_run
from .latency import LatencyHistogram

CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 9999
BATCH = 500                      # resamples per vectorised call (bounds memory)
BETTER, WORSE, SAME, UNDEFINED = "better", "worse", "no detectable change", "undefined"


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    unit: str                    # "fraction" (points = 1/100), "count" or "ms"


def metric_list(windows: tuple[int, ...]) -> list[Metric]:
    """Every compared metric, in report order."""
    fractions = ["VPQ", *(f"VPQ_{n}" for n in windows), "VPQ_things", "VPQ_stuff", "STQ",
                 "AQ", "SQ"]
    return ([Metric(n, True, "fraction") for n in fractions]
            + [Metric("id_switches", False, "count"), Metric("recoveries", True, "count"),
               Metric("dropped_frames", False, "count"),
               Metric("latency_p50_ms", False, "ms"), Metric("latency_p95_ms", False, "ms")])


def point_values(result: dict[str, Any], counts: dict[str, Any], windows: tuple[int, ...]
                 ) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """(metric -> value, class -> VPQ) from the metric core's result dictionary and a
    run's counts and latency summary."""
    values = {"VPQ": result["VPQ"], "VPQ_things": result["VPQ_things"],
              "VPQ_stuff": result["VPQ_stuff"], "STQ": result["STQ"], "AQ": result["AQ"],
              "SQ": result["SQ"], **{k: counts[k] for k in COUNTS},
              "latency_p50_ms": counts["latency_ms"]["p50"],
              "latency_p95_ms": counts["latency_ms"]["p95"]}
    values.update({f"VPQ_{n}": result["VPQ_windows"][str(n)] for n in windows})
    return values, {name: entry["VPQ"] for name, entry in result["per_class"].items()}


def resample_values(units: Units, weights: np.ndarray, run: Run) -> dict[str, np.ndarray]:
    """Every metric (R,) and ``per_class`` (R, C) of the resamples given by ``weights``
    (R, U): how often each unit was drawn."""
    vpq = np.tensordot(weights, units.vpq, axes=(1, 0))               # (R, 4, W, C)
    values = resampled.vpq(vpq[:, 0], vpq[:, 1], vpq[:, 2], vpq[:, 3],
                           run.classes.is_thing_lut, run.windows)
    sq = resampled.sq(np.tensordot(weights, units.confusion, axes=(1, 0)))
    if units.aq_parts is not None:
        parts = weights @ units.aq_parts
        aq_sum, tracks = parts[:, 0], parts[:, 1]
    else:
        aq_sum, tracks = resampled.track_aq_parts(weights @ units.gt_size,
                                                  weights @ units.pred_size,
                                                  weights @ units.overlap, units.pair_gt,
                                                  units.pair_pred)
    aq = resampled.aq(aq_sum, tracks)
    counts = weights @ units.counts
    latency = weights @ units.latency
    values.update(SQ=sq, AQ=aq, STQ=resampled.stq(aq, sq),
                  latency_p50_ms=LatencyHistogram.quantiles(units.latency_keys, latency, 0.5),
                  latency_p95_ms=LatencyHistogram.quantiles(units.latency_keys, latency, 0.95),
                  **{k: counts[:, j] for j, k in enumerate(COUNTS)})
    return values


def _weights(indices: np.ndarray, n: int) -> np.ndarray:
    """Resampled unit indices (..., n) -> how often each unit was drawn (R, n)."""
    rows = indices.reshape(-1, n)
    offsets = (np.arange(len(rows)) * n)[:, None]
    return np.bincount((rows + offsets).ravel(), minlength=len(rows) * n).reshape(
        len(rows), n).astype(np.float64)


def _stack(values: dict[str, np.ndarray], metrics: list[Metric]) -> np.ndarray:
    """(metrics + classes, R)."""
    return np.concatenate([np.stack([values[m.name] for m in metrics]),
                           values["per_class"].T])


def verdict(metric: Metric, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return UNDEFINED
    gain_low, gain_high = (low, high) if metric.higher_is_better else (-high, -low)
    return BETTER if gain_low > 0 else WORSE if gain_high < 0 else SAME


def _entry(metric: Metric, a: float | None, b: float | None, low: float | None,
           high: float | None, defined: int, resamples: int) -> dict[str, Any]:
    delta = None if a is None or b is None else b - a
    if delta is None:
        low = high = None
    entry = {"a": a, "b": b, "delta": delta, "ci_low": low, "ci_high": high,
             "verdict": verdict(metric, low, high) if delta is not None else UNDEFINED,
             "higher_is_better": metric.higher_is_better, "unit": metric.unit}
    if delta is not None and defined < resamples:
        entry["defined_resamples"] = defined
    return entry


def compare_runs(folder_a: Path, folder_b: Path, resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the comparison document of ``--json``, what the report draws: per-unit deltas)."""
    if resamples < 1:
        raise ConfigError(f"--resamples must be at least 1, got {resamples}")
    run_a, run_b = load_run(folder_a, "A"), load_run(folder_b, "B")
    check_comparable(run_a, run_b)
    if len(run_a.drives) > 1:
        resampling, length = "drives", None
        units_a, units_b = drive_units(run_a), drive_units(run_b)
    elif run_a.fleet:
        raise DataError(f"{folder_a}: a fleet of one drive holds no per-frame statistics to "
                        "resample; replay the drive alone (vps-ros replay BAG) for both runs")
    else:
        length = block_length(run_a)
        resampling = f"blocks of {length} consecutive frames of one drive"
        units_a, units_b = block_units(run_a, length), block_units(run_b, length)
    n = len(units_a.names)
    if n < 2:
        raise DataError(f"{folder_a}: one drive of {length} frames or fewer is one block; "
                        "the bootstrap needs at least two units")
    metrics = metric_list(run_a.windows)

    def statistic(index_a: np.ndarray, index_b: np.ndarray, axis: int = -1) -> np.ndarray:
        delta = (_stack(resample_values(units_b, _weights(index_b, n), run_b), metrics)
                 - _stack(resample_values(units_a, _weights(index_a, n), run_a), metrics))
        return delta.reshape(delta.shape[0], *index_a.shape[:-1])

    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap((np.arange(n), np.arange(n)), statistic, paired=True,
                                 vectorized=True, n_resamples=resamples, batch=BATCH,
                                 confidence_level=CONFIDENCE, method="percentile",
                                 # random_state (not rng, scipy >= 1.15): the floor of
                                 # requirements/core.txt is scipy 1.11
                                 random_state=np.random.default_rng(seed))
        distribution = np.asarray(result.bootstrap_distribution).reshape(-1, resamples)
        alpha = (1 - CONFIDENCE) / 2
        defined = (~np.isnan(distribution)).sum(axis=1)
        # Rows undefined in some resamples (a class absent from them): the interval of
        # the resamples where both runs define it, and how many those were.
        low = np.where(defined == resamples, result.confidence_interval.low,
                       np.nanquantile(np.where(defined[:, None] > 0, distribution, 0),
                                      alpha, axis=1))
        high = np.where(defined == resamples, result.confidence_interval.high,
                        np.nanquantile(np.where(defined[:, None] > 0, distribution, 0),
                                       1 - alpha, axis=1))
        unit_delta = (_stack(resample_values(units_b, np.eye(n), run_b), metrics)
                      - _stack(resample_values(units_a, np.eye(n), run_a), metrics))

    totals_a, totals_b = run_a.totals(), run_b.totals()
    values_a, classes_a = point_values(totals_a[0].result(run_a.classes), totals_a[1],
                                       run_a.windows)
    values_b, classes_b = point_values(totals_b[0].result(run_b.classes), totals_b[1],
                                       run_b.windows)
    class_metric = Metric("VPQ", True, "fraction")
    rows = [(m, values_a[m.name], values_b[m.name]) for m in metrics] + \
        [(class_metric, classes_a[c.name], classes_b[c.name]) for c in run_a.classes]

    def interval(row: int) -> tuple[float | None, float | None]:
        if defined[row] == 0:
            return None, None
        return float(low[row]), float(high[row])

    entries = [_entry(m, a, b, *interval(row), int(defined[row]), resamples)
               for row, (m, a, b) in enumerate(rows)]
    document = {
        "run_a": str(folder_a), "run_b": str(folder_b),
        "metrics": {m.name: e for m, e in zip(metrics, entries)},
        "per_class": {c.name: e for c, e in zip(run_a.classes, entries[len(metrics):])},
        "drives": drive_deltas(run_a, run_b),
        "resamples": resamples, "seed": seed, "confidence_level": CONFIDENCE,
        "method": "paired percentile bootstrap (scipy.stats.bootstrap, paired=True)",
        "resampling": resampling, "units": n, "block_frames": length,
        "num_drives": len(run_a.drives), "classes": run_a.classes.name,
        "windows": list(run_a.windows)}
    pictures = {"units": units_a.names,
                "deltas": {m.name: unit_delta[row] for row, m in enumerate(metrics)},
                "drives_a": run_a.drives, "drives_b": run_b.drives}
    return document, pictures


def drive_deltas(run_a: Run, run_b: Run) -> list[dict[str, Any]]:
    """Per drive: its metrics in A and B and the deltas (its own statistics, exactly),
    worst first by VPQ delta (undefined last)."""
    rows = []
    for name in run_a.drives:
        metrics = {}
        for run, side in ((run_a, "a"), (run_b, "b")):
            data = run.drives[name]
            counts = {**{k: data[k] for k in COUNTS}, "latency_ms": LatencyHistogram.
                      from_state_dict(data["latency"]).summary()}
            values, _ = point_values(drive_stats(data, run).result(run.classes), counts,
                                     run.windows)
            for key, value in values.items():
                metrics.setdefault(key, {})[side] = value
        for entry in metrics.values():
            entry["delta"] = None if entry["a"] is None or entry["b"] is None \
                else entry["b"] - entry["a"]
        rows.append({"drive": name, "metrics": metrics})
    return sorted(rows, key=lambda r: (r["metrics"]["VPQ"]["delta"] is None,
                                       r["metrics"]["VPQ"]["delta"] or 0.0, r["drive"]))


@dataclass(frozen=True)
class Gate:
    """``--fail-if-worse METRIC[:POINTS]``."""

    metric: str
    points: float | None

    @classmethod
    def parse(cls, text: str, names: list[str]) -> "Gate":
        name, _, points = text.partition(":")
        if name not in names and not re.fullmatch(r"VPQ_[0-9]+", name):
            raise ConfigError(f"--fail-if-worse {text}: unknown metric {name!r}; choose from "
                              f"{', '.join(names)}")
        if not points:
            return cls(name, None)
        try:
            value = float(points)
        except ValueError:
            raise ConfigError(f"--fail-if-worse {text}: {points!r} is not a number of "
                              "points") from None
        if not value >= 0:
            raise ConfigError(f"--fail-if-worse {text}: points must be 0 or more")
        return cls(name, value)

    def failed(self, entry: dict[str, Any]) -> bool:
        """B worse than A by more than the points (fractions: percentage points) with the
        whole interval beyond them; with no points, the whole interval worse than 0."""
        if entry["delta"] is None:
            return False
        sign = 1.0 if entry["higher_is_better"] else -1.0
        scale = 0.01 if entry["unit"] == "fraction" else 1.0
        margin = (self.points or 0.0) * scale
        gains = sorted((sign * entry["ci_low"], sign * entry["ci_high"]))
        if self.points is None:
            return gains[1] < 0
        return sign * entry["delta"] < -margin and gains[1] < -margin

    def describe(self) -> str:
        return self.metric + ("" if self.points is None else f":{self.points:g}")


def apply_gates(document: dict[str, Any], gates: list[Gate]) -> list[str]:
    """Record the gates in the document; the ones that failed."""
    for gate in gates:
        if gate.metric not in document["metrics"]:
            raise ConfigError(f"--fail-if-worse {gate.describe()}: the runs have no VPQ "
                              f"window {gate.metric[4:]} (windows {document['windows']})")
    failed = [g.describe() for g in gates if g.failed(document["metrics"][g.metric])]
    document["gates"] = [{"gate": g.describe(), "failed": g.describe() in failed} for g in gates]
    return failed
