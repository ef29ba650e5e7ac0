"""The node's real-time parts, ROS-free: per-camera frame queue (newest survive, drops
counted, one batch across cameras) and the statistics behind /diagnostics."""
import threading
import time

import numpy as np
import pytest

from vps_ros.ros.frame_queue import FrameQueue
from vps_ros.ros.stream_stats import StreamStats


def test_a_camera_keeps_only_its_newest_frames_and_counts_the_dropped():
    queue = FrameQueue(num_cameras=2, size=1)
    assert queue.put(0, "a0") == 0
    assert queue.put(0, "a1") == 1
    assert queue.put(0, "a2") == 1
    assert queue.put(1, "b0") == 0
    assert queue.take(timeout=0) == [(0, "a2"), (1, "b0")]
    assert queue.take(timeout=0) == []


def test_a_deeper_queue_hands_out_frames_oldest_first_one_per_camera_and_batch():
    queue = FrameQueue(num_cameras=2, size=3)
    dropped = [queue.put(0, f"a{i}") for i in range(5)]
    assert dropped == [0, 0, 0, 1, 1]
    queue.put(1, "b0")
    assert queue.take(0) == [(0, "a2"), (1, "b0")]
    assert queue.take(0) == [(0, "a3")]
    assert queue.clear() == 1 and queue.take(0) == []


def test_take_waits_for_a_frame_and_close_wakes_it():
    queue = FrameQueue(num_cameras=1)
    got = []
    taker = threading.Thread(target=lambda: got.append(queue.take(timeout=10)))
    taker.start()
    time.sleep(0.2)
    assert taker.is_alive() and got == []        # still waiting: nothing was put
    put_at = time.monotonic()
    queue.put(0, "x")
    taker.join(timeout=5)
    assert got == [[(0, "x")]] and time.monotonic() - put_at < 5   # woken, not timed out
    taker = threading.Thread(target=lambda: got.append(queue.take(timeout=10)))
    taker.start()
    queue.close()
    taker.join(timeout=5)
    assert not taker.is_alive() and got[-1] == [] and queue.closed
    with pytest.raises(ValueError):
        FrameQueue(1, size=0)


def test_stream_stats_rates_latency_and_counters():
    stats = StreamStats(window_s=2.0)
    first = stats.snapshot(0.0)
    assert first["input_hz"] == 0.0 and np.isnan(first["latency_p50_ms"])
    for i in range(21):                    # 10 Hz input for 2 s
        stats.input(i * 0.1)
    for i in range(11):                    # 5 Hz output, latencies 10..110 ms
        stats.output(i * 0.2, 10.0 + 10 * i)
    stats.count(dropped=3, bad=2, resets=1)
    snap = stats.snapshot(2.0)
    assert snap["input_hz"] == pytest.approx(10.0)
    assert snap["output_hz"] == pytest.approx(5.0)
    assert snap["latency_p50_ms"] == pytest.approx(60.0)
    assert snap["latency_p95_ms"] == pytest.approx(105.0)
    assert (snap["received"], snap["processed"], snap["dropped"], snap["bad"],
            snap["resets"]) == (21, 11, 3, 2, 1)
    later = stats.snapshot(10.0)           # nothing for longer than the window
    assert later["input_hz"] == 0.0 and later["received"] == 21
