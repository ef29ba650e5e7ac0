"""Counters, rates and latency percentiles of one camera stream, for /diagnostics."""
from __future__ import annotations

import threading
from collections import deque

import numpy as np


class StreamStats:
    """Thread-safe: the subscription callback records inputs, the inference thread
    outputs, the diagnostics timer reads snapshots.

    Rates are over the events of the last ``window_s`` seconds; latency percentiles
    over the last ``latency_samples`` frames.
    """

    def __init__(self, window_s: float = 5.0, latency_samples: int = 500) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._inputs: deque[float] = deque()
        self._outputs: deque[float] = deque()
        self._latency_ms: deque[float] = deque(maxlen=latency_samples)
        self.received = self.processed = self.dropped = self.bad = self.resets = 0
        self.refused = 0   # of the bad: beyond the maximum input size (limits)

    def input(self, now: float) -> None:
        with self._lock:
            self.received += 1
            self._push(self._inputs, now)

    def output(self, now: float, latency_ms: float) -> None:
        with self._lock:
            self.processed += 1
            self._push(self._outputs, now)
            self._latency_ms.append(latency_ms)

    def count(self, *, dropped: int = 0, bad: int = 0, resets: int = 0,
              refused: int = 0) -> None:
        """``refused`` frames are counted as bad too."""
        with self._lock:
            self.dropped += dropped
            self.bad += bad + refused
            self.refused += refused
            self.resets += resets

    def snapshot(self, now: float) -> dict[str, float]:
        """Rates (Hz), latency p50/p95 (ms, NaN before the first output), totals."""
        with self._lock:
            for events in (self._inputs, self._outputs):
                self._trim(events, now)
            latency = np.array(self._latency_ms) if self._latency_ms else np.full(1, np.nan)
            return {"input_hz": self._rate(self._inputs, now),
                    "output_hz": self._rate(self._outputs, now),
                    "latency_p50_ms": float(np.percentile(latency, 50)),
                    "latency_p95_ms": float(np.percentile(latency, 95)),
                    "received": self.received, "processed": self.processed,
                    "dropped": self.dropped, "bad": self.bad, "refused": self.refused,
                    "resets": self.resets}

    def _push(self, events: deque[float], now: float) -> None:
        events.append(now)
        self._trim(events, now)

    def _trim(self, events: deque[float], now: float) -> None:
        while events and events[0] < now - self.window_s:
            events.popleft()

    def _rate(self, events: deque[float], now: float) -> float:
        """Events per second over the window; over the span since the first event
        while the stream is younger than the window."""
        if len(events) < 2:
            return 0.0
        span = max(now - events[0], events[-1] - events[0])
        return (len(events) - 1) / span if span > 0 else 0.0
