"""Drives cut short, replayed: a recorder process killed with SIGKILL mid-drive, a bag cut
inside a frame, a replay killed while recording its outputs. Every frame written before
the fault is scored, the report says ``partial`` with what was ``recovered``, the exit
code is 0, and the metrics equal those of a complete bag of the same frames."""
import contextlib
import signal
import subprocess
import time

import numpy as np
import pytest
from mcap.exceptions import EndOfFile
from mcap.records import Chunk
from mcap.stream_reader import StreamReader

from conftest import REPO, python_process
from testkit.pipeline_helpers import HEIGHT, WIDTH
from testkit.replay_helpers import (cut_inside_frame, metrics, panoptic_of, recorded, replay,
                            small_model, synthetic_frames, write_bag)
from vps_ros.data import bags

CONTRACT = ("VPQ", "VPQ_windows", "VPQ_things", "VPQ_stuff", "STQ", "AQ", "SQ", "per_class",
            "frames", "annotated_frames")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model"))


def _scores(document: dict) -> dict:
    return {k: document[k] for k in CONTRACT}


def _reference(frames: list, model, tmp_path) -> dict:
    """Metrics of a complete bag recorded afresh from ``frames``."""
    bag = write_bag(tmp_path / "reference_bag", frames)
    assert replay(bag, tmp_path / "reference", *model, "--no-video") == 0
    return metrics(tmp_path / "reference")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_recorder_killed_mid_drive_replays_every_frame_written(storage, model, tmp_path,
                                                              caplog):
    written, total = 4, 8
    bag = tmp_path / "drive"
    recorder = python_process([str(REPO / "testkit" / "bag_recorder.py"), str(bag), storage,
                               str(written), str(total), str(HEIGHT), str(WIDTH)], env=None,
                              stdin=subprocess.PIPE)
    try:
        assert recorder.stdout.readline().strip() == f"wrote {written}", recorder.stderr.read()
        recorder.send_signal(signal.SIGKILL)
        assert recorder.wait(timeout=30) == -signal.SIGKILL
    finally:
        if recorder.poll() is None:
            recorder.kill()
    assert not (bag / "metadata.yaml").exists()

    out = tmp_path / "report"
    assert replay(bag, out, *model, "--no-video") == 0
    document = metrics(out)
    assert document["partial"] is True and document["error"] is None
    recovered = document["recovered"]
    assert recovered["reason"].startswith("metadata.yaml missing")
    assert recovered["messages"] == {"/camera/camera_info": written,
                                     "/camera/image_raw": written, "/gt/panoptic": written}
    assert recovered["last_stamp_ns"] == (written - 1) * 100_000_000
    frames = synthetic_frames(total)[1][:written]
    assert _scores(document) == _scores(_reference(frames, model, tmp_path))
    assert "RECOVERED BAG" in (out / "report.md").read_text()
    warnings = [r for r in caplog.records if "recovered bag" in r.getMessage()]
    assert len(warnings) == 1 and str(bag) in warnings[0].getMessage()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_cut_drive_scores_like_the_complete_prefix(storage, model, tmp_path):
    frames = synthetic_frames(6)[1]
    bag = write_bag(tmp_path / "drive", frames, bags.BagOptions(storage=storage))
    if storage == "mcap":
        cut_inside_frame(bag, 3)
    else:
        data = next(bag.glob("*.db3"))
        data.write_bytes(data.read_bytes()[:data.stat().st_size * 6 // 10])
    kept = len(list(bags.read_frames(bag)))
    assert kept == 3 if storage == "mcap" else 0 < kept < len(frames)
    out = tmp_path / "report"
    assert replay(bag, out, *model, "--no-video") == 0
    document = metrics(out)
    assert document["partial"] is True and document["frames"] == kept
    assert document["recovered"]["lost"]["/camera/image_raw"] > 0
    assert _scores(document) == _scores(_reference(frames[:kept], model, tmp_path))


def test_replay_killed_while_recording_leaves_a_recoverable_bag(model, tmp_path):
    frames = synthetic_frames(80)[1]
    bag = write_bag(tmp_path / "drive", frames)
    outputs = tmp_path / "outputs"
    args = ["-m", "vps_ros.cli", "replay", str(bag), "--image-topic", bags.IMAGE_TOPIC,
            "--gt-topic", bags.GT_TOPIC, "--out", str(tmp_path / "killed"), "--model",
            str(model[0]), "--params", str(model[1]), "--no-video", "--record", str(outputs)]
    process = python_process(args, env=None)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            files = list(outputs.glob("*.mcap")) if outputs.is_dir() else []
            if files and files[0].stat().st_size > 5 * HEIGHT * WIDTH * 4:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the replay ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert not (outputs / "metadata.yaml").exists()
    recovery = bags.recovery(outputs)
    assert recovery.cut and recovery.reason.startswith("metadata.yaml missing")
    store = bags.typestore()
    with bags.open_bag(outputs) as source:
        got = [(stamp, store.deserialize_cdr(raw, bags.IMAGE))
               for _, stamp, raw in source.messages(["/camera/panoptic"])]
    assert 5 <= len(got) < len(frames)
    with next(outputs.glob("*.mcap")).open("rb") as f:      # one chunk per output frame
        chunks = 0
        with contextlib.suppress(EndOfFile):
            for record in StreamReader(f, emit_chunks=True).records:
                chunks += isinstance(record, Chunk)
    assert chunks == len(got)
    # The offline replay is deterministic and causal: the same frames give the same outputs.
    prefix = write_bag(tmp_path / "prefix", frames[:len(got)])
    assert replay(prefix, tmp_path / "complete", *model, "--no-video", "--record",
                  str(tmp_path / "complete_outputs")) == 0
    expected = recorded(tmp_path / "complete_outputs")["/camera/panoptic"]
    assert len(expected) == len(got)
    for (stamp, msg), (stamp0, msg0) in zip(got, expected):
        assert stamp == stamp0 and np.array_equal(panoptic_of(msg), panoptic_of(msg0))
