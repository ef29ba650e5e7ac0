"""Cityscapes-VPS, KITTI-STEP and VIPSeg: hand-made fixtures read correctly, written
synthetic data reads back identical, and bad input is a DataError naming the file."""
import json
import shutil

import cv2
import numpy as np
import pytest

from conftest import REPO
from vps_ros.data.formats.datasets import open_dataset, open_panoptic, write_dataset
from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.errors import DataError
from vps_ros.types import ClassTable

FIXTURES = REPO / "test" / "fixtures"


def _copy(name, tmp_path):
    return shutil.copytree(FIXTURES / name, tmp_path / name)


@pytest.fixture(scope="module")
def synthetic():
    dataset = SyntheticDataset("val", 2, 11, 64, 128)
    return dataset, list(dataset)


# -- fixtures in the release formats ---------------------------------------------------------
def test_cityscapes_vps_fixture():
    dataset = open_dataset("cityscapes-vps", FIXTURES / "cityscapes_vps")
    frames = list(dataset)
    assert dataset.classes.name == "cityscapes-vps" and len(dataset.classes) == 19
    assert [(f.sequence, f.index) for f in frames] == [("0001", i) for i in range(10)]
    assert [f.index for f in frames if f.panoptic is not None] == [4, 9]
    assert frames[1].stamp_ns == round(1e9 / 17)
    first, last = frames[4].panoptic, frames[9].panoptic
    assert (first[0] == 255000).all() and (first[1:3] == 10000).all()
    assert (first[3:5, 0:3] == 13001).all() and (last[3:5, 0:3] == 13001).all()
    assert (first[3:6, 6:8] == 11000).all(), "crowd: thing class, instance 0"
    assert (last[4:6, 4:7] == 13002).all()
    assert first[5, 0] == 0 and frames[4].image[0, 1, 1] == 20


def test_kitti_step_fixture():
    frames = list(open_dataset("kitti-step", FIXTURES / "kitti_step"))
    assert [(f.sequence, f.index) for f in frames] == [("0002", 0), ("0002", 1)]
    for frame in frames:
        pan = frame.panoptic
        assert (pan[0] == 255000).all() and (pan[1:3] == 10000).all()
        assert (pan[3:5, 0:3] == 13007).all() and (pan[3:6, 6:8] == 11300).all()
    assert (frames[1].panoptic[5, 3:5] == 11000).all()


def test_vipseg_fixture_in_both_release_forms():
    frames = list(open_dataset("vipseg", FIXTURES / "vipseg", split="val"))
    assert [(f.sequence, f.index) for f in frames] == [("12_abc", 0), ("12_abc", 5)]
    pan = frames[1].panoptic
    assert (pan[0] == 255000).all() and (pan[1:3] == 28000).all() and pan[3, 4] == 18000
    assert (pan[3:5, 0:3] == 60001).all() and (pan[3:6, 6:8] == 60002).all()
    assert (pan[5, 3:5] == 48000).all()
    table = ClassTable.builtin("vipseg")
    coco = open_panoptic("vipseg", FIXTURES / "vipseg" / "panoptic_gt_VIPSeg_val.json", table, 1000)
    for frame in frames:
        assert np.array_equal(coco.frame(frame.sequence, frame.index), frame.panoptic)


def test_open_panoptic_reads_ground_truth_by_sequence_and_frame():
    table = ClassTable.builtin("cityscapes-vps")
    source = open_panoptic("cityscapes-vps", FIXTURES / "cityscapes_vps", table, 1000)
    assert source.sequences() == ["0001"] and source.indices("0001") == [4, 9]
    assert [i for i, _ in source.frames("0001")] == [4, 9]
    with pytest.raises(DataError, match=r"panoptic_gt_val_city_vps.json: no panoptic map for "
                                        r"sequence '0001' frame 3"):
        source.frame("0001", 3)
    kitti = open_panoptic("kitti-step", FIXTURES / "kitti_step" / "panoptic_maps" / "val",
                          ClassTable.builtin("kitti-step"), 1000)
    assert kitti.frame("0002", 0)[3, 0] == 13007


# -- written datasets read back identical ---------------------------------------------------------
@pytest.mark.parametrize("fmt", ["cityscapes-vps", "kitti-step"])
def test_written_synthetic_split_reads_back_identical(fmt, synthetic, tmp_path):
    dataset, frames = synthetic
    write_dataset(fmt, dataset, tmp_path, split="val")
    back = open_dataset(fmt, tmp_path)
    assert back.classes == dataset.classes and back.label_divisor == 1000
    read = list(back)
    assert [(f.sequence, f.index, f.stamp_ns) for f in read] == \
        [(f.sequence, f.index, f.stamp_ns) for f in frames]
    annotated = [f.index for f in read if f.panoptic is not None and f.sequence == "0000"]
    assert annotated == ([4, 9] if fmt == "cityscapes-vps" else list(range(11)))
    for original, copy in zip(frames, read):
        assert np.array_equal(original.image, copy.image)
        if copy.panoptic is not None:
            assert np.array_equal(original.panoptic, copy.panoptic)


def test_cityscapes_vps_predictions_layout(synthetic, tmp_path):
    """pred.json + pan_pred/ (the VPSNet evaluation's layout) reads like ground truth."""
    dataset, frames = synthetic
    write_dataset("cityscapes-vps", dataset, tmp_path / "gt", split="val")
    gt = json.loads((tmp_path / "gt" / "panoptic_gt_val_city_vps.json").read_text())
    shutil.copytree(tmp_path / "gt" / "val" / "panoptic_video", tmp_path / "pred" / "pan_pred")
    (tmp_path / "pred" / "pred.json").write_text(json.dumps({"annotations": gt["annotations"]}))
    pred = open_panoptic("cityscapes-vps", tmp_path / "pred", dataset.classes, 1000)
    truth = open_panoptic("cityscapes-vps", tmp_path / "gt", dataset.classes, 1000)
    assert pred.sequences() == truth.sequences() == ["0000", "0001"]
    assert np.array_equal(pred.frame("0001", 9), frames[11 + 9].panoptic)


# -- bad input ---------------------------------------------------------------------------
def test_missing_image_of_an_annotated_frame(tmp_path):
    root = _copy("cityscapes_vps", tmp_path)
    (root / "val" / "img_all" / "frankfurt_000000_000005_leftImg8bit.png").unlink()
    with pytest.raises(DataError, match="frankfurt_000000_000005_leftImg8bit.png: image not found"):
        list(open_dataset("cityscapes-vps", root))
    root = _copy("kitti_step", tmp_path)
    (root / "images" / "val" / "0002" / "000001.png").unlink()
    with pytest.raises(DataError, match="000001.png: annotated frame 1 of sequence '0002' has no"):
        open_dataset("kitti-step", root)


def test_frame_without_its_annotation(tmp_path):
    root = _copy("kitti_step", tmp_path)
    (root / "panoptic_maps" / "val" / "0002" / "000001.png").unlink()
    maps = root / "panoptic_maps" / "val"
    with pytest.raises(DataError, match=rf"0002/000001\.png: no panoptic map for this frame in "
                                        rf"{maps} \(KITTI-STEP annotates every frame; 1 missing\)"):
        open_dataset("kitti-step", root)
    root = _copy("vipseg", tmp_path)
    (root / "panomasks" / "12_abc" / "00000005.png").unlink()
    with pytest.raises(DataError, match=r"12_abc/00000005\.jpg: no panomask for this frame \(1 "
                                        r"frame\(s\) of annotated videos lack one\)"):
        open_dataset("vipseg", root, split="val")


def test_image_and_annotation_sizes_disagree(tmp_path):
    root = _copy("kitti_step", tmp_path)
    cv2.imwrite(str(root / "images" / "val" / "0002" / "000001.png"), np.zeros((7, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"000001.png: image is 8x7 but its annotation .* is 8x6"):
        list(open_dataset("kitti-step", root))


def test_unknown_class_id(tmp_path):
    root = _copy("kitti_step", tmp_path)
    path = root / "panoptic_maps" / "val" / "0002" / "000000.png"
    png = cv2.imread(str(path))
    png[0, 0] = (0, 0, 40)                          # BGR: R = class 40
    cv2.imwrite(str(path), png)
    with pytest.raises(DataError, match=r"000000.png \(sequence 0002 frame 0\): unknown class "
                                        r"id\(s\) \[40\]"):
        list(open_dataset("kitti-step", root))
    root = _copy("vipseg", tmp_path)
    mask = root / "panomasks" / "12_abc" / "00000005.png"
    data = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
    data[0, 0] = 200 * 100 + 3                      # category 199 does not exist
    cv2.imwrite(str(mask), data)
    with pytest.raises(DataError, match=r"00000005.png \(video 12_abc frame 5\): unknown class "
                                        r"id\(s\) \[199\]"):
        list(open_dataset("vipseg", root, split="val"))


def _edit_json(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_png_and_json_segment_ids_must_agree(tmp_path):
    table = ClassTable.builtin("cityscapes-vps")
    root = _copy("cityscapes_vps", tmp_path)
    gt = root / "panoptic_gt_val_city_vps.json"
    _edit_json(gt, lambda d: d["annotations"][0]["segments_info"].pop(0))
    source = open_panoptic("cityscapes-vps", root, table, 1000)
    with pytest.raises(DataError, match=r"0001_0005_.*_gtFine_color.png \(sequence 0001 frame 4\): "
                                        r"segment id\(s\) \[11829830\] are in the PNG but not in "
                                        r"its JSON"):
        source.frame("0001", 4)
    root = _copy("cityscapes_vps", tmp_path / "b")
    gt = root / "panoptic_gt_val_city_vps.json"
    _edit_json(gt, lambda d: d["annotations"][1]["segments_info"].append(
        {"id": 5, "category_id": 2, "iscrowd": 0, "area": 1}))
    source = open_panoptic("cityscapes-vps", root, table, 1000)
    with pytest.raises(DataError, match=r"frame 9\): segment id\(s\) \[5\] are in the JSON .* "
                                        r"not in the PNG"):
        source.frame("0001", 9)


def test_unknown_category_id(tmp_path):
    root = _copy("cityscapes_vps", tmp_path)
    gt = root / "panoptic_gt_val_city_vps.json"
    _edit_json(gt, lambda d: d["annotations"][0]["segments_info"][0].update(category_id=77))
    source = open_panoptic("cityscapes-vps", root, ClassTable.builtin("cityscapes-vps"), 1000)
    with pytest.raises(DataError, match=r"frame 4\): segment 11829830 has unknown category_id 77"):
        source.frame("0001", 4)


def test_corrupt_png(tmp_path):
    root = _copy("cityscapes_vps", tmp_path)
    png = root / "val" / "panoptic_video" / "0001_0010_frankfurt_000000_000010_gtFine_color.png"
    png.write_bytes(png.read_bytes()[:40])
    source = open_panoptic("cityscapes-vps", root, ClassTable.builtin("cityscapes-vps"), 1000)
    with pytest.raises(DataError, match=r"_gtFine_color.png: cannot decode the panoptic PNG"):
        source.frame("0001", 9)


def test_categories_that_disagree_with_the_class_table(tmp_path):
    with pytest.raises(DataError, match="does not match class table 'synthetic'"):
        open_panoptic("cityscapes-vps", FIXTURES / "cityscapes_vps",
                      ClassTable.builtin("synthetic"), 1000)


def test_unknown_format_and_option():
    with pytest.raises(DataError, match="unknown dataset format 'coco'"):
        open_dataset("coco", FIXTURES)
    with pytest.raises(DataError, match="unknown option"):
        open_dataset("kitti-step", FIXTURES / "kitti_step", colour="red")
