"""The one latency summary of replay reports (p50, p95, mean and max, in ms): exact
from a drive's values (:func:`latency_summary`), or from :class:`LatencyHistogram`, the
fixed-size summary that fleet drives send and add up."""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def latency_summary(values: list[float]) -> dict[str, float | None]:
    """p50 / p95 / mean / max of ``values`` (all None without values)."""
    if not values:
        return {"p50": None, "p95": None, "mean": None, "max": None}
    array = np.asarray(values)
    return {"p50": float(np.percentile(array, 50)), "p95": float(np.percentile(array, 95)),
            "mean": float(array.mean()), "max": float(array.max())}


class LatencyHistogram:
    """Latencies in bins 1 % wide (exact count, mean and max): the fleet's p50 / p95
    from a fixed-size summary, however many frames the drives had."""

    FLOOR_MS = 1e-3
    STEP = 1.01

    def __init__(self, bins: dict[int, int] | None = None, count: int = 0,
                 total_ms: float = 0.0, max_ms: float | None = None) -> None:
        self.bins = dict(bins or {})
        self.count, self.total_ms, self.max_ms = count, total_ms, max_ms

    @classmethod
    def of(cls, values: list[float]) -> "LatencyHistogram":
        histogram = cls()
        for value in values:
            key = 0 if value <= cls.FLOOR_MS else 1 + int(math.log(value / cls.FLOOR_MS,
                                                                    cls.STEP))
            histogram.bins[key] = histogram.bins.get(key, 0) + 1
        histogram.count, histogram.total_ms = len(values), float(sum(values))
        histogram.max_ms = max(values) if values else None
        return histogram

    def merge(self, other: "LatencyHistogram") -> None:
        for key, count in other.bins.items():
            self.bins[key] = self.bins.get(key, 0) + count
        self.count += other.count
        self.total_ms += other.total_ms
        if other.max_ms is not None:
            self.max_ms = other.max_ms if self.max_ms is None else max(self.max_ms, other.max_ms)

    @classmethod
    def bin_value(cls, key: np.ndarray | int) -> np.ndarray:
        """The latency a bin stands for (its geometric middle; the floor for bin 0)."""
        key = np.asarray(key)
        return np.where(key == 0, cls.FLOOR_MS, cls.FLOOR_MS * cls.STEP ** (key - 0.5))

    def _quantile(self, q: float) -> float:
        rank, seen = q * self.count, 0
        for key in sorted(self.bins):
            seen += self.bins[key]
            if seen >= rank:
                return float(self.bin_value(key))
        return float(self.max_ms or 0.0)

    @classmethod
    def quantiles(cls, keys: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
        """The ``q`` quantile of many histograms at once (a bootstrap's resamples):
        ``counts`` (R, B) of the sorted bin ``keys`` (B,); NaN for an empty one. The
        same rule as :meth:`summary`: the first bin whose running count reaches ``q``
        of the total."""
        running = np.cumsum(counts, axis=1)
        total = running[:, -1] if counts.shape[1] else np.zeros(len(counts))
        first = np.argmax(running >= (q * total)[:, None], axis=1) if counts.shape[1] \
            else np.zeros(len(counts), int)
        values = cls.bin_value(keys[first]) if len(keys) else np.zeros(len(counts))
        return np.where(total > 0, values, np.nan)

    def summary(self) -> dict[str, float | None]:
        if not self.count:
            return latency_summary([])
        return {"p50": self._quantile(0.5), "p95": self._quantile(0.95),
                "mean": self.total_ms / self.count, "max": self.max_ms}

    def state_dict(self) -> dict[str, Any]:
        return {"bins": {str(k): v for k, v in sorted(self.bins.items())}, "count": self.count,
                "total_ms": self.total_ms, "max_ms": self.max_ms}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "LatencyHistogram":
        return cls({int(k): int(v) for k, v in state["bins"].items()}, int(state["count"]),
                   float(state["total_ms"]), state["max_ms"])
