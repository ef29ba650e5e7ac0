"""Pieces of the report's pictures: ground-truth boxes and ids, the frames chosen for
the contact sheet."""
import numpy as np

from vps_ros.replay.figures import choose_frames, gt_objects
from vps_ros.types import ClassTable

CLASSES = ClassTable.builtin("synthetic")
CAR, ROAD, SKY = (CLASSES.id_of(n) for n in ("car", "road", "sky"))


def test_ground_truth_objects_are_the_things_with_their_exact_boxes():
    gt = np.full((30, 50), ROAD * 1000, np.int32)
    gt[:5] = SKY * 1000
    gt[10:20, 3:9] = CAR * 1000 + 4
    gt[12:14, 30:45] = CAR * 1000 + 2
    gt[25, 0] = CAR * 1000               # crowd: no id to draw
    gt[0, 49] = CLASSES.void_id * 1000 + 3
    objects = gt_objects(gt, CLASSES, 1000)
    assert [(o.track_id, o.class_id, o.area, o.box) for o in objects] == [
        (2, CAR, 30, (30, 12, 45, 14)), (4, CAR, 60, (3, 10, 9, 20))]


def test_contact_sheet_frames_are_evenly_spread_over_every_camera():
    assert choose_frames({"camera": 50}) == {"camera": {0, 10, 20, 29, 39, 49}}
    assert choose_frames({"front": 10, "rear": 4}) == {"front": {0, 4, 9}, "rear": {0, 2, 3}}
    assert choose_frames({"camera": 2}) == {"camera": {0, 1}}
    assert choose_frames({"camera": 0}) == {}
