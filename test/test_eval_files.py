"""`vps-ros eval` end to end on files: datasets written in each release layout, read back
by the data readers, scored by the metric core; and the command's bad inputs."""
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from vps_ros import cli
from vps_ros.data.formats.datasets import write_dataset
from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.metrics import evaluate_sequences

LABEL_DIVISOR = 1000


class Frames:
    """A VideoDataset over a list of frames (what the writers take)."""

    def __init__(self, frames, classes):
        self.frames, self.classes, self.label_divisor = frames, classes, LABEL_DIVISOR
        self.frame_rate = 10.0

    def __iter__(self):
        return iter(self.frames)


def _predictions(frames):
    """Ground truth with errors a tracker and segmenter make: an id switch halfway
    through each sequence, one object lost, and a strip of road called sidewalk."""
    predicted = []
    for f in frames:
        pan = f.panoptic.copy()
        classes, ids = pan // LABEL_DIVISOR, pan % LABEL_DIVISOR
        things = (classes >= 6) & (classes < 255) & (ids > 0)
        if f.index >= 5:
            pan[things] = classes[things] * LABEL_DIVISOR + (ids[things] % 7 + 1)
        lost = np.unique(pan[things])[:1]
        pan[np.isin(pan, lost)] = 0
        pan[-3:, :] = np.where(pan[-3:, :] == 0, 1 * LABEL_DIVISOR, pan[-3:, :])
        predicted.append(replace(f, panoptic=pan))
    return predicted


@pytest.fixture(scope="module")
def drive():
    data = SyntheticDataset("test", num_sequences=2, num_frames=20, height=96, width=192)
    frames = list(data)
    return data.classes, frames, _predictions(frames)


def _expected(frames, predicted, classes, windows):
    by_sequence = {}
    for g, p in zip(frames, predicted):
        by_sequence.setdefault(g.sequence, []).append((g.panoptic, p.panoptic))
    return evaluate_sequences(by_sequence.values(), classes, LABEL_DIVISOR, windows)


# Cityscapes-VPS annotates every 5th frame of a snippet, counting from 1 (5, 10, ...).
@pytest.mark.parametrize("fmt, annotated_every", [("kitti-step", 1), ("cityscapes-vps", 5)])
def test_eval_of_written_files_matches_the_core_on_the_same_frames(drive, fmt, annotated_every,
                                                                    tmp_path):
    classes, frames, predicted = drive
    write_dataset(fmt, Frames(frames, classes), tmp_path / "gt")
    write_dataset(fmt, Frames(predicted, classes), tmp_path / "pred")
    out = tmp_path / "metrics.json"
    code = cli.main(["eval", "--format", fmt, "--gt", str(tmp_path / "gt"), "--pred",
                     str(tmp_path / "pred"), "--classes", "synthetic", "--json", str(out),
                     "--md", str(tmp_path / "metrics.md")])
    assert code == 0
    got = json.loads(out.read_text())
    annotated = [i for i, f in enumerate(frames) if (f.index + 1) % annotated_every == 0]
    expected = _expected([frames[i] for i in annotated], [predicted[i] for i in annotated],
                         classes, (1, 2, 3, 4))
    assert got["num_frames"] == len(annotated)
    for key in ("VPQ", "VPQ_things", "VPQ_stuff", "STQ", "AQ", "SQ"):
        assert got[key] == pytest.approx(expected[key], abs=1e-12), key
    assert 0 < got["VPQ"] < 1 and 0 < got["AQ"] < 1
    assert "VPQ" in (tmp_path / "metrics.md").read_text()


def _kitti_pair(drive, tmp_path):
    classes, frames, predicted = drive
    write_dataset("kitti-step", Frames(frames, classes), tmp_path / "gt")
    write_dataset("kitti-step", Frames(predicted, classes), tmp_path / "pred")
    return sorted((tmp_path / "pred").rglob("*.png"))


def _eval(tmp_path, fmt="kitti-step"):
    return subprocess.run([sys.executable, "-m", "vps_ros.cli", "eval", "--format", fmt,
                           "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"),
                           "--classes", "synthetic", "--json", str(tmp_path / "m.json")],
                          capture_output=True, text=True, timeout=120)


def test_missing_prediction_frame_exits_2_naming_it(drive, tmp_path):
    labels = [p for p in _kitti_pair(drive, tmp_path) if "panoptic" in str(p)]
    labels[3].unlink()
    result = _eval(tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "frame 3" in result.stderr and "error:" in result.stderr


def test_corrupt_prediction_png_exits_2_naming_the_file(drive, tmp_path):
    labels = [p for p in _kitti_pair(drive, tmp_path) if "panoptic" in str(p)]
    labels[2].write_bytes(labels[2].read_bytes()[:40])
    result = _eval(tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert labels[2].name in result.stderr


def test_prediction_of_another_size_exits_2(drive, tmp_path):
    classes, frames, predicted = drive
    small = [replace(p, image=p.image[:48, :96], panoptic=p.panoptic[:48, :96])
             for p in predicted]
    write_dataset("kitti-step", Frames(frames, classes), tmp_path / "gt")
    write_dataset("kitti-step", Frames(small, classes), tmp_path / "pred")
    result = _eval(tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "96" in result.stderr and "192" in result.stderr


def test_empty_prediction_is_valid_and_scores_zero(drive, tmp_path):
    classes, frames, _ = drive
    void = [replace(f, panoptic=np.full_like(f.panoptic, 255 * LABEL_DIVISOR)) for f in frames]
    write_dataset("kitti-step", Frames(frames, classes), tmp_path / "gt")
    write_dataset("kitti-step", Frames(void, classes), tmp_path / "pred")
    result = _eval(tmp_path)
    assert result.returncode == 0, result.stderr
    got = json.loads((tmp_path / "m.json").read_text())
    assert got["VPQ"] == 0.0 and got["SQ"] == 0.0
