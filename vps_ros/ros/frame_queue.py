"""Frames waiting for the model, per camera, newest first to survive.

The inference thread takes the oldest waiting frame of every camera at once (one
batched model call); the subscription callbacks put frames in. Each camera keeps at
most ``size`` frames: a new frame beyond that drops the oldest, so the wait before
inference, and with it the latency, never grows with the input rate.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Any


class FrameQueue:
    def __init__(self, num_cameras: int, size: int = 1) -> None:
        if size < 1:
            raise ValueError(f"queue size must be >= 1, got {size}")
        self._waiting = [deque() for _ in range(num_cameras)]
        self._size = size
        self._cond = threading.Condition()
        self._closed = False

    def put(self, camera: int, frame: Any) -> int:
        """Queue ``frame`` for ``camera``; returns how many older frames it dropped."""
        with self._cond:
            waiting = self._waiting[camera]
            dropped = 0
            while len(waiting) >= self._size:
                waiting.popleft()
                dropped += 1
            waiting.append(frame)
            self._cond.notify()
            return dropped

    def take(self, timeout: float | None = None) -> list[tuple[int, Any]]:
        """(camera, frame) for every camera with a waiting frame, its oldest; waits up to
        ``timeout`` seconds for one. Empty when the wait timed out or the queue closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or any(self._waiting), timeout)
            if self._closed:
                return []
            return [(camera, waiting.popleft())
                    for camera, waiting in enumerate(self._waiting) if waiting]

    def clear(self) -> int:
        """Drop every waiting frame; returns how many."""
        with self._cond:
            count = sum(len(w) for w in self._waiting)
            for waiting in self._waiting:
                waiting.clear()
            return count

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Wake the taker for good (it gets no more frames)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
