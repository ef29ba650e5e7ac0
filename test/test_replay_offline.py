"""``vps-ros replay --mode offline`` on short synthetic bags: the report's files, the
same numbers as the metric core on the recorded outputs, other topic names / bgr8 /
sqlite3, several cameras, a bag without ground truth."""
import json

import cv2
import numpy as np
import pytest

from testkit.replay_helpers import (metrics, objects_of, panoptic_of, recorded, replay, small_model,
                            synthetic_frames, write_bag, write_images)
from vps_ros.data import bags
from vps_ros.metrics import evaluate_sequences
from vps_ros.pipeline import Pipeline
from vps_ros.replay.cameras import cameras_of
from vps_ros.types import ClassTable

CLASSES = ClassTable.builtin("synthetic")
CONTRACT = ("VPQ", "VPQ_windows", "VPQ_things", "VPQ_stuff", "STQ", "AQ", "SQ", "per_class")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    _, frames = synthetic_frames()
    return frames, write_bag(tmp_path_factory.mktemp("bag") / "drive", frames)


def _scores(document: dict) -> dict:
    return {k: document[k] for k in CONTRACT}


def test_report_files_and_metrics_are_the_metric_core_on_the_recorded_outputs(
        drive, model, tmp_path, capsys, monkeypatch):
    frames, bag = drive
    out = tmp_path / "report"
    # The replay's clock made exact: each real step takes, on it, a known duration; the
    # report's latency must be those durations (offline: step started -> output).
    from types import SimpleNamespace
    from vps_ros.replay import offline
    steps_ms = [4.0 * (1 + (7 * k) % 11) for k in range(len(frames))]
    clock = {"now": 100.0, "steps": 0}
    monkeypatch.setattr(offline, "time", SimpleNamespace(perf_counter=lambda: clock["now"]))
    real_step = Pipeline.step

    def timed_step(self, image, stamp_ns):      # the real step, then its duration on the clock
        result = real_step(self, image, stamp_ns)
        clock["now"] += steps_ms[clock["steps"]] / 1e3
        clock["steps"] += 1
        return result
    monkeypatch.setattr(Pipeline, "step", timed_step)
    assert replay(bag, out, *model, "--record", str(tmp_path / "outputs")) == 0
    printed = capsys.readouterr().out
    assert "VPQ" in printed and str(out / "report.md") in printed

    document = metrics(out)
    assert set(CONTRACT) <= set(document)
    assert document["frames"] == document["annotated_frames"] == len(frames)
    assert document["dropped_frames"] == 0 and document["partial"] is False
    assert clock["steps"] == len(frames)
    for stat, value in (("p50", np.percentile(steps_ms, 50)), ("p95", np.percentile(steps_ms, 95)),
                        ("mean", np.mean(steps_ms)), ("max", np.max(steps_ms))):
        assert document["latency_ms"][stat] == pytest.approx(value, abs=1e-6), stat
    assert document["cameras"]["camera"]["VPQ"] == document["VPQ"]

    messages = recorded(tmp_path / "outputs")
    assert set(messages) == {"/camera/panoptic", "/camera/objects"}
    stamps = [stamp for stamp, _ in messages["/camera/panoptic"]]
    assert stamps == [i * 100_000_000 for i in range(len(frames))]
    assert [s for s, _ in messages["/camera/objects"]] == stamps
    predictions = [panoptic_of(msg) for _, msg in messages["/camera/panoptic"]]
    expected = evaluate_sequences([[(f.panoptic, p) for f, p in zip(frames, predictions)]],
                                  CLASSES, 1000, (1, 2, 3, 4))
    assert _scores(document) == _scores(expected)
    for _, msg in messages["/camera/objects"]:
        assert msg.label_divisor == 1000
        assert all(o.panoptic_id == o.class_id * 1000 + o.id for o in msg.objects)

    report = (out / "report.md").read_text()
    for heading in ("VPQ (1 fr)", "Things", "Stuff", "STQ", "p50 ms", "p95 ms", "dropped",
                    "| road |"):
        assert heading in report
    for picture in ("overlay_contact_sheet.png", "tracks_timeline.png"):
        image = cv2.imread(str(out / picture))
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
        assert picture in report
    video = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)


def test_replay_is_deterministic(drive, model, tmp_path):
    _, bag = drive
    for name in ("a", "b"):
        assert replay(bag, tmp_path / name, *model, "--no-video",
                      "--record", str(tmp_path / f"{name}.bag")) == 0
    assert _scores(metrics(tmp_path / "a")) == _scores(metrics(tmp_path / "b"))
    a, b = recorded(tmp_path / "a.bag"), recorded(tmp_path / "b.bag")
    for (_, x), (_, y) in zip(a["/camera/panoptic"], b["/camera/panoptic"]):
        np.testing.assert_array_equal(panoptic_of(x), panoptic_of(y))
    assert [objects_of(m) for _, m in a["/camera/objects"]] == \
        [objects_of(m) for _, m in b["/camera/objects"]]
    assert not (tmp_path / "a" / "overlay.mp4").exists()


def test_other_topic_names_bgr8_and_sqlite3_give_the_same_metrics(drive, model, tmp_path):
    frames, bag = drive
    other = write_bag(tmp_path / "other", frames, bags.BagOptions(
        storage="sqlite3", image_topic="/front/color/image", gt_topic="/front/labels",
        info_topic=None, encoding="bgr8"))
    assert any(p.suffix == ".db3" for p in other.iterdir())
    assert replay(other, tmp_path / "other_report", *model, "--no-video",
                  image_topic="/front/color/image", gt_topic="/front/labels") == 0
    assert replay(bag, tmp_path / "reference", *model, "--no-video") == 0
    assert _scores(metrics(tmp_path / "other_report")) == _scores(metrics(tmp_path / "reference"))
    assert list(metrics(tmp_path / "other_report")["cameras"]) == ["front"]


def _two_camera_bag(path, front: list, rear: list):
    """Two cameras and their ground truth, interleaved, recorded with rosbags alone."""
    messages = []
    for k, (f, r) in enumerate(zip(front, rear)):
        stamp = 1_000_000_000 + k * 100_000_000
        messages += [("/front/image", stamp, stamp, f.image, "rgb8"),
                     ("/rear/image", stamp, stamp, r.image, "rgb8"),
                     ("/front/gt", stamp, stamp, f.panoptic, "32SC1"),
                     ("/rear/gt", stamp, stamp, r.panoptic, "32SC1")]
    return write_images(path, messages)


def test_several_cameras_are_scored_each_and_together(model, tmp_path):
    _, front = synthetic_frames(5, 0)
    _, rear = synthetic_frames(5, 1)
    bag = _two_camera_bag(tmp_path / "two", front, rear)
    argv = ["--image-topic", "/rear/image", "--gt-topic", "/rear/gt", "--no-video",
            "--record", str(tmp_path / "outputs")]
    assert replay(bag, tmp_path / "both", *model, *argv, image_topic="/front/image",
                  gt_topic="/front/gt") == 0
    document = metrics(tmp_path / "both")
    assert list(document["cameras"]) == ["front", "rear"]
    assert document["frames"] == 10 and document["num_sequences"] == 2
    messages = recorded(tmp_path / "outputs")
    predicted = {cam: [panoptic_of(m) for _, m in messages[f"/{cam}/panoptic"]]
                 for cam in ("front", "rear")}
    truth = {"front": front, "rear": rear}
    for cam in ("front", "rear"):
        alone = evaluate_sequences([[(f.panoptic, p) for f, p in zip(truth[cam], predicted[cam])]],
                                   CLASSES, 1000, (1, 2, 3, 4))
        assert _scores(document["cameras"][cam]) == _scores(alone)
    together = evaluate_sequences(
        [[(f.panoptic, p) for f, p in zip(truth[c], predicted[c])] for c in ("front", "rear")],
        CLASSES, 1000, (1, 2, 3, 4))
    assert _scores(document) == _scores(together)
    # each camera alone gives the same outputs as within the pair (own tracker memory)
    assert replay(bag, tmp_path / "rear", *model, "--no-video", "--record",
                  str(tmp_path / "rear.bag"), image_topic="/rear/image", gt_topic="/rear/gt") == 0
    alone = [panoptic_of(m) for _, m in recorded(tmp_path / "rear.bag")["/rear/panoptic"]]
    for x, y in zip(alone, predicted["rear"]):
        np.testing.assert_array_equal(x, y)


def test_a_bag_without_ground_truth_reports_outputs_and_latency_only(model, tmp_path):
    _, frames = synthetic_frames(4)
    bag = write_bag(tmp_path / "raw", frames, bags.BagOptions(gt_topic=None))
    assert replay(bag, tmp_path / "report", *model, "--no-video", gt_topic=None) == 0
    document = metrics(tmp_path / "report")
    assert document["VPQ"] is None and document["STQ"] is None
    assert "no ground truth" in document["metrics_note"]
    assert document["frames"] == 4 and document["latency_ms"]["p95"] > 0
    assert "Metrics skipped" in (tmp_path / "report" / "report.md").read_text()
    assert (tmp_path / "report" / "tracks_timeline.png").is_file()


def test_camera_names_come_from_the_topics():
    assert [c.name for c in cameras_of(["/camera/image_raw"], ["/gt/panoptic"])] == ["camera"]
    assert [c.name for c in cameras_of(["/left/image", "/right/image"], None)] == \
        ["left", "right"]
    assert [c.gt_topic for c in cameras_of(["/l/i", "/r/i"], [None, "/r/gt"])] == [None, "/r/gt"]
    assert [c.name for c in cameras_of(["/cam/a/image", "/cam/b/image"], None)] == \
        ["cam0", "cam1"]
    assert [c.name for c in cameras_of(["image"], None)] == ["camera"]
    assert json.dumps([c.gt_topic for c in cameras_of(["/a/i"], None)]) == "[null]"


def test_a_ground_truth_topic_without_messages_is_noted(model, tmp_path):
    _, frames = synthetic_frames(3)
    unannotated = [type(f)(f.sequence, f.index, f.stamp_ns, f.image, None) for f in frames]
    bag = write_bag(tmp_path / "bag", unannotated)
    assert bags.topics(bag)[bags.GT_TOPIC].count == 0
    assert replay(bag, tmp_path / "report", *model, "--no-video") == 0
    document = metrics(tmp_path / "report")
    assert document["VPQ"] is None and document["annotated_frames"] == 0
    assert "has no message with the header stamp" in document["metrics_note"]
