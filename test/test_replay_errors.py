"""Bad input to ``vps-ros replay``: one clear line on stderr, exit code 2, no traceback;
what was scored before a fault is still in the report, marked partial."""
import numpy as np
import pytest

from testkit.replay_helpers import (metrics, replay, small_model, synthetic_frames, write_bag,
                            write_images)
from vps_ros.data import bags


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames(6)[1]


def _fails(capsys, *args, **kwargs) -> str:
    assert replay(*args, **kwargs) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("vps-ros replay: error: ")
    assert "Traceback" not in captured.err + captured.out
    return captured.err + captured.out


def test_missing_bag(model, tmp_path, capsys):
    err = _fails(capsys, tmp_path / "nothing", tmp_path / "out", *model)
    assert f"{tmp_path / 'nothing'}: bag not found" in err


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_cut_before_its_first_frame(storage, model, frames, tmp_path, capsys):
    bag = write_bag(tmp_path / "bag", frames, bags.BagOptions(storage=storage))
    data = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
    data.write_bytes(data.read_bytes()[:600])
    err = _fails(capsys, bag, tmp_path / "out", *model)
    assert f"error: {bag}" in err and "no complete message to recover" in err


def test_absent_topic_lists_the_topics_there_are(model, frames, tmp_path, capsys):
    bag = write_bag(tmp_path / "bag", frames)
    err = _fails(capsys, bag, tmp_path / "out", *model, image_topic="/front/image")
    assert "no image topic '/front/image'" in err
    for topic in ("/camera/image_raw (sensor_msgs/msg/Image, 6)", "/gt/panoptic",
                  "/camera/camera_info"):
        assert topic in err
    err = _fails(capsys, bag, tmp_path / "out", *model, gt_topic="/gt/labels")
    assert "no ground-truth topic '/gt/labels'" in err and "/gt/panoptic" in err


def test_ground_truth_of_another_size_stops_with_a_partial_report(model, frames, tmp_path,
                                                                  capsys):
    bad = [f if k != 3 else type(f)(f.sequence, f.index, f.stamp_ns, f.image,
                                    np.ascontiguousarray(f.panoptic[:, :-8]))
           for k, f in enumerate(frames)]
    bag = write_bag(tmp_path / "bag", bad)
    err = _fails(capsys, bag, tmp_path / "out", *model)
    assert "/gt/panoptic frame 3" in err and "ground truth is 120x64" in err
    assert "is 128x64" in err
    assert "partial report written" in err
    document = metrics(tmp_path / "out")
    assert document["partial"] is True and "frame 3" in document["error"]
    assert document["frames"] == document["annotated_frames"] == 3
    assert document["VPQ_windows"]["1"] is not None and document["VPQ_windows"]["4"] is None
    assert "PARTIAL REPORT" in (tmp_path / "out" / "report.md").read_text()


def test_stamps_out_of_order(model, frames, tmp_path, capsys):
    stamps = [0, 1, 2, 4, 3, 5]      # header stamps; the log times increase
    bag = write_images(tmp_path / "bag", [
        (topic, k * 100_000_000, stamps[k] * 100_000_000, array, encoding)
        for k, f in enumerate(frames)
        for topic, array, encoding in (("/camera/image_raw", f.image, "rgb8"),
                                       ("/gt/panoptic", f.panoptic, "32SC1"))])
    err = _fails(capsys, bag, tmp_path / "out", *model)
    assert "frame 4: header stamp 300000000 ns is not after the previous frame's " \
           "(400000000 ns)" in err
    document = metrics(tmp_path / "out")
    assert document["partial"] is True and document["frames"] == 4
    assert "partial report written" in err


def test_unpaired_topics_and_bad_options(model, frames, tmp_path, capsys):
    bag = write_bag(tmp_path / "bag", frames)
    with pytest.raises(SystemExit) as exit_:
        replay(bag, tmp_path / "out", *model, "--gt-topic", "/gt/panoptic")
    assert exit_.value.code == 2
    assert "--gt-topic /gt/panoptic: give it right after the --image-topic it belongs to" \
        in capsys.readouterr().err
    err = _fails(capsys, bag, tmp_path / "out", *model, "--mode", "live", "--rate", "0")
    assert "--rate must be positive" in err
    (tmp_path / "file").write_text("")
    err = _fails(capsys, bag, tmp_path / "file", *model)
    assert "is a file" in err
    err = _fails(capsys, bag, tmp_path / "out", *model, "--record", str(bag))
    assert "exists already" in err
