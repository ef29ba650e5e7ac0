"""`vps-ros eval --format coco-panoptic` on files in COCO's layout (JSON + PNG folder).

One small image per convention of panopticapi's ``pq_compute``, with the counts worked
out by hand in each test; then a generated case of a few hundred segments whose every
number must equal hotcoco's (an independent Rust implementation of ``pq_compute``).
"""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from vps_ros import cli

H, W = 4, 6
CATEGORIES = [{"id": 7, "name": "road", "isthing": 0}, {"id": 9, "name": "sky", "isthing": 0},
              {"id": 11, "name": "car", "isthing": 1}, {"id": 20, "name": "person", "isthing": 1}]


def _png(path, ids):
    ids = np.asarray(ids, np.int64)
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[..., ::-1])


def _write(root, side, images, categories=CATEGORIES):
    """images: [(image_id, id map, segments_info)] -> root/side.json + root/side/*.png."""
    annotations = []
    for image_id, ids, segments in images:
        name = f"{image_id:012d}.png"
        _png(root / side / name, ids)
        annotations.append({"image_id": image_id, "file_name": name, "segments_info": segments})
    doc = {"annotations": annotations,
           "images": [{"id": i, "file_name": f"{i:012d}.png", "height": np.shape(m)[0],
                       "width": np.shape(m)[1]} for i, m, _ in images],
           "categories": categories}
    (root / f"{side}.json").write_text(json.dumps(doc))


def _seg(sid, category, area=None, crowd=0):
    seg = {"id": sid, "category_id": category, "iscrowd": crowd}
    if area is not None:
        seg["area"] = area
    return seg


def _columns(*spans):
    """A 4x6 id map from (id, first column, end column) spans; other pixels void (0)."""
    ids = np.zeros((H, W), np.int64)
    for sid, start, end in spans:
        ids[:, start:end] = sid
    return ids


def _eval(root, capsys, threads=1):
    out = root / "result.json"
    code = cli.main(["eval", "--format", "coco-panoptic", "--gt", str(root / "gt.json"),
                     "--gt-folder", str(root / "gt"), "--pred", str(root / "pred.json"),
                     "--pred-folder", str(root / "pred"), "--threads", str(threads),
                     "--json", str(out)])
    captured = capsys.readouterr()
    return code, (json.loads(out.read_text()) if code == 0 else None), captured


def _counts(result, category):
    c = result["per_class"][str(category)]
    return c["tp"], c["fp"], c["fn"]


def test_several_stuff_segments_of_one_class_stay_apart(tmp_path, capsys):
    # road everywhere in the ground truth; the prediction splits it 16 + 8 pixels:
    # IoU 16/24 is a TP, the 8-pixel part (IoU 8/24) a FP: PQ = (2/3) / 1.5 = 4/9.
    _write(tmp_path, "gt", [(1, _columns((1, 0, 6)), [_seg(1, 7, 24)])])
    _write(tmp_path, "pred", [(1, _columns((1, 0, 4), (2, 4, 6)), [_seg(1, 7), _seg(2, 7)])])
    code, result, _ = _eval(tmp_path, capsys)
    assert code == 0
    assert _counts(result, 7) == (1, 1, 0)
    assert result["per_class"]["7"]["pq"] == pytest.approx(4 / 9, abs=1e-12)
    assert result["per_class"]["7"]["sq"] == pytest.approx(2 / 3, abs=1e-12)
    assert result["Stuff"]["n"] == 1 and result["Stuff"]["pq"] == pytest.approx(4 / 9, abs=1e-12)


def test_only_the_last_crowd_segment_of_a_category_absorbs_predictions(tmp_path, capsys):
    # two crowd regions of car (ids 1 then 2 in segments_info), road on the right.
    # A car prediction on the first crowd region is a FP, on the last one it is ignored.
    _write(tmp_path, "gt", [(1, _columns((1, 0, 2), (2, 2, 4), (3, 4, 6)),
                             [_seg(1, 11, 8, crowd=1), _seg(2, 11, 8, crowd=1), _seg(3, 7, 8)])])
    _write(tmp_path, "pred", [(1, _columns((5, 0, 2), (6, 2, 4), (7, 4, 6)),
                               [_seg(5, 11), _seg(6, 11), _seg(7, 7)])])
    code, result, _ = _eval(tmp_path, capsys)
    assert code == 0
    assert _counts(result, 11) == (0, 1, 0)
    assert _counts(result, 7) == (1, 0, 0)


def test_iscrowd_on_a_stuff_segment_is_honoured(tmp_path, capsys):
    # road marked crowd: neither TP nor FN, and the road prediction on it is ignored.
    _write(tmp_path, "gt", [(1, _columns((1, 0, 3), (2, 3, 6)),
                             [_seg(1, 7, 12, crowd=1), _seg(2, 9, 12)])])
    _write(tmp_path, "pred", [(1, _columns((1, 0, 3), (2, 3, 6)), [_seg(1, 7), _seg(2, 9)])])
    code, result, _ = _eval(tmp_path, capsys)
    assert code == 0
    assert _counts(result, 7) == (0, 0, 0) and _counts(result, 9) == (1, 0, 0)
    assert result["Stuff"]["n"] == 1


def test_iscrowd_on_predictions_is_ignored(tmp_path, capsys):
    # two cars, each predicted exactly by a segment marked iscrowd: two TPs (merged into
    # one 24-pixel segment they would reach IoU 0.5 only, no match).
    _write(tmp_path, "gt", [(1, _columns((1, 0, 3), (2, 3, 6)),
                             [_seg(1, 11, 12), _seg(2, 11, 12)])])
    _write(tmp_path, "pred", [(1, _columns((1, 0, 3), (2, 3, 6)),
                               [_seg(1, 11, crowd=1), _seg(2, 11, crowd=1)])])
    code, result, _ = _eval(tmp_path, capsys)
    assert code == 0
    assert _counts(result, 11) == (2, 0, 0)
    assert result["Things"]["pq"] == pytest.approx(1.0, abs=1e-12)


def test_ground_truth_area_comes_from_the_json(tmp_path, capsys):
    # 16 road pixels whose JSON area says 40: IoU = 16 / (16 + 40 - 16) = 0.4, no match.
    _write(tmp_path, "gt", [(1, _columns((1, 0, 4)), [_seg(1, 7, 40)])])
    _write(tmp_path, "pred", [(1, _columns((1, 0, 4)), [_seg(1, 7)])])
    code, result, _ = _eval(tmp_path, capsys)
    assert code == 0
    assert _counts(result, 7) == (0, 1, 1)


def test_ground_truth_ids_missing_from_png_or_json_are_accepted(tmp_path, capsys):
    # PNG id 99 has no JSON entry: left out of matching but not void, so the prediction's
    # union keeps its 8 pixels: IoU 16/24. JSON segments 50 (sky) and 2^24 + 5 (car, an id
    # no PNG colour holds) are not in the PNG: a FN each.
    _write(tmp_path, "gt", [(1, _columns((1, 0, 4), (99, 4, 6)),
                             [_seg(1, 7, 16), _seg(50, 9, 5), _seg(256 ** 3 + 5, 11, 3)])])
    _write(tmp_path, "pred", [(1, _columns((1, 0, 6)), [_seg(1, 7)])])
    code, result, _ = _eval(tmp_path, capsys)
    assert code == 0
    assert _counts(result, 7) == (1, 0, 0) and _counts(result, 9) == (0, 0, 1)
    assert _counts(result, 11) == (0, 0, 1)
    assert result["per_class"]["7"]["sq"] == pytest.approx(2 / 3, abs=1e-12)


@pytest.mark.parametrize("pred_ids, segments, words", [
    (_columns((1, 0, 3), (2, 3, 6)), [_seg(1, 7)], ["image 1", "segment 2", "not in the JSON"]),
    (_columns((1, 0, 6)), [_seg(1, 7), _seg(3, 9)], ["image 1", "segment 3", "not in the PNG"]),
    (_columns((1, 0, 6)), [_seg(1, 8)], ["image 1", "segment 1", "unknown category_id 8"]),
])
def test_bad_predictions_exit_2_naming_image_and_segment(tmp_path, pred_ids, segments, words):
    _write(tmp_path, "gt", [(1, _columns((1, 0, 6)), [_seg(1, 7, 24)])])
    _write(tmp_path, "pred", [(1, pred_ids, segments)])
    result = subprocess.run(
        [sys.executable, "-m", "vps_ros.cli", "eval", "--format", "coco-panoptic",
         "--gt", str(tmp_path / "gt.json"), "--gt-folder", str(tmp_path / "gt"),
         "--pred", str(tmp_path / "pred.json"), "--pred-folder", str(tmp_path / "pred")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    for word in words:
        assert word in result.stderr


@pytest.mark.parametrize("side, segments, words", [
    ("gt", [_seg(1, 7, 24), _seg(2, 9)], ["image 1", "ground-truth segment 2", "'area'"]),
    ("gt", [_seg(1, 7, 24), {"id": 4, "category_id": 9, "area": 3}],
     ["image 1", "ground-truth segment 4", "'iscrowd'"]),
    ("pred", [_seg(1, 7), {"id": 6, "iscrowd": 0}], ["image 1", "segment 6", "'category_id'"]),
    ("pred", [_seg(1, 7), {"category_id": 7}], ["image 1", "'id'"]),
    ("pred", [_seg(1, 7), [1, 7]], ["image 1", "'id'"]),
])
def test_segments_missing_a_field_exit_2_naming_image_and_segment(tmp_path, capsys, side,
                                                                  segments, words):
    good = {"gt": [_seg(1, 7, 24)], "pred": [_seg(1, 7)]}
    good[side] = segments
    for name, segs in good.items():
        _write(tmp_path, name, [(1, _columns((1, 0, 6)), segs)])
    code, _, captured = _eval(tmp_path, capsys)
    assert code == 2 and len(captured.err.strip().splitlines()) == 1, captured.err
    for word in words:
        assert word in captured.err


def test_an_image_without_prediction_exits_2_and_extra_predictions_are_ignored(tmp_path, capsys):
    _write(tmp_path, "gt", [(1, _columns((1, 0, 6)), [_seg(1, 7, 24)]),
                            (2, _columns((1, 0, 6)), [_seg(1, 7, 24)])])
    _write(tmp_path, "pred", [(1, _columns((1, 0, 6)), [_seg(1, 7)]),
                              (3, _columns((1, 0, 6)), [_seg(1, 9)])])
    code, _, captured = _eval(tmp_path, capsys)
    assert code == 2 and "no prediction for the image with id 2" in captured.err
    _write(tmp_path, "gt", [(1, _columns((1, 0, 6)), [_seg(1, 7, 24)])])
    code, result, _ = _eval(tmp_path, capsys)
    assert code == 0 and _counts(result, 7) == (1, 0, 0) and _counts(result, 9) == (0, 0, 0)


def test_a_split_with_nothing_to_score_is_minus_one_and_printed_as_a_dash(tmp_path, capsys):
    _write(tmp_path, "gt", [(1, _columns((1, 0, 6)), [_seg(1, 7, 24)])])
    _write(tmp_path, "pred", [(1, _columns((1, 0, 6)), [_seg(1, 7)])])
    code, result, captured = _eval(tmp_path, capsys)
    assert code == 0
    assert result["Things"] == {"pq": -1.0, "sq": -1.0, "rq": -1.0, "n": 0}
    assert result["per_class"]["11"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "tp": 0, "fp": 0,
                                         "fn": 0}
    assert result["All"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 1}
    lines = captured.out.splitlines()
    assert lines[0] == "          |    PQ     SQ     RQ     N"
    assert lines[2] == "All       | 100.0  100.0  100.0     1"
    assert lines[3] == "Things    |     -      -      -     0"


# --- a generated case against hotcoco -------------------------------------------------

GEN_CATEGORIES = [{"id": c, "name": f"c{c}", "isthing": int(c > 40)}
                  for c in (3, 5, 8, 13, 21, 34, 41, 55, 89, 144)]


def _generated(root, images=12, segments=30, seed=0):
    """Voronoi images of random categories with crowd (things and stuff), JSON areas off
    by a few pixels, ids missing from the JSON; predictions shifted, relabelled, split,
    with void, stuff of one class in several segments and iscrowd set at random."""
    rng = np.random.default_rng(seed)
    hh, ww = 48, 64
    ys, xs = np.mgrid[0:hh, 0:ww]
    cats = np.array([c["id"] for c in GEN_CATEGORIES])
    gt_images, pred_images = [], []
    for image in range(images):
        centres = rng.uniform([0, 0], [hh, ww], (segments, 2))
        cell = np.argmin((ys[..., None] - centres[:, 0]) ** 2
                         + (xs[..., None] - centres[:, 1]) ** 2, -1)
        gt_ids = rng.choice(np.arange(1, 256 ** 3), segments, replace=False)
        gt_map = gt_ids[cell]
        gt_map[rng.random((hh, ww)) < 0.03] = 0
        category = rng.choice(cats, segments)
        gt_segs = []
        for k in range(segments):
            area = int((gt_map == gt_ids[k]).sum())
            if k == segments - 1:            # in the PNG, not in the JSON
                continue
            area += int(rng.integers(-2, 3)) if rng.random() < 0.3 else 0
            gt_segs.append(_seg(int(gt_ids[k]), int(category[k]), max(area, 1),
                                crowd=int(rng.random() < 0.12)))
        gt_images.append((image, gt_map, gt_segs))

        shifted = np.roll(cell, int(rng.integers(-3, 4)), axis=1)
        pred_cat = np.where(rng.random(segments) < 0.15, rng.choice(cats, segments), category)
        pred_map = (shifted + 1).astype(np.int64) * 7
        split = rng.random(segments) < 0.2    # half of a segment as a second segment
        pred_map = np.where(split[shifted] & (xs % 2 == 0), pred_map + 1, pred_map)
        pred_map[(ys > hh - 4) & (xs < 20)] = 0
        present = np.unique(pred_map)
        pred_segs = [_seg(int(v), int(pred_cat[v // 7 - 1]), crowd=int(rng.random() < 0.2))
                     for v in present if v]
        pred_images.append((image, pred_map, pred_segs))
    _write(root, "gt", gt_images, GEN_CATEGORIES)
    _write(root, "pred", pred_images, GEN_CATEGORIES)
    return sum(len(s) for _, _, s in gt_images) + sum(len(s) for _, _, s in pred_images)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_generated_case_equals_hotcoco(tmp_path, capsys, threads):
    panoptic = pytest.importorskip("hotcoco.panoptic", reason="hotcoco is in requirements/dev.txt")
    assert _generated(tmp_path) > 500
    code, ours, _ = _eval(tmp_path, capsys, threads)
    assert code == 0
    theirs = panoptic.PanopticEval(str(tmp_path / "gt.json"), str(tmp_path / "pred.json"),
                                   gt_folder=str(tmp_path / "gt"),
                                   pred_folder=str(tmp_path / "pred"))
    theirs.evaluate()
    reference = theirs.results()
    assert reference["reference_deviations"] == []
    for split in ("All", "Things", "Stuff"):
        assert ours[split]["n"] == reference[split]["n"] > 0
        for key in ("pq", "sq", "rq"):
            assert ours[split][key] == pytest.approx(reference[split][key], abs=1e-9), split
    scored = 0
    for category, theirs_c in reference["per_class"].items():
        mine = ours["per_class"][str(category)]
        assert (mine["tp"], mine["fp"], mine["fn"]) == (theirs_c["tp"], theirs_c["fp"],
                                                        theirs_c["fn"]), category
        if theirs_c["tp"] + theirs_c["fp"] + theirs_c["fn"]:   # hotcoco: -1 where none
            scored += 1
            for key in ("pq", "sq", "rq"):
                assert mine[key] == pytest.approx(theirs_c[key], abs=1e-9), (category, key)
    assert scored == len(GEN_CATEGORIES)


def test_folders_are_required_for_coco_and_json_for_video_formats(tmp_path, capsys):
    _write(tmp_path, "gt", [(1, _columns((1, 0, 6)), [_seg(1, 7, 24)])])
    code = cli.main(["eval", "--format", "coco-panoptic", "--gt", str(tmp_path / "gt.json"),
                     "--pred", str(tmp_path / "gt.json")])
    assert code == 2 and "--gt-folder and --pred-folder" in capsys.readouterr().err
    code = cli.main(["eval", "--format", "kitti-step", "--gt", str(tmp_path),
                     "--pred", str(tmp_path)])
    assert code == 2 and "needs --json" in capsys.readouterr().err
