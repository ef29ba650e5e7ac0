"""The tracker interface the pipeline and the node use: config validation, objects(),
reset(), update_config(), matching-space statistics, the near-online and IoU-stitching
modes, and clear errors for frames it cannot take."""
import math

import numpy as np
import pytest

from testkit.tracking_scenes import CAR, PEDESTRIAN, frame_of
from vps_ros.config import from_mapping, validate_value
from vps_ros.errors import ConfigError, DataError
from vps_ros.tracking import MODES, MatchingSpace, TrackerConfig, make_tracker

E0, E1 = (1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0)
BOX = (100, 140, 160, 190)


def shifted(box, dx):
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def test_config_defaults_and_yaml_values():
    config = from_mapping(TrackerConfig, {"mode": "naive_mb", "tau": 5, "alpha": 0.6},
                          "perception.yaml: tracker")
    assert (config.mode, config.tau, config.alpha, config.lam) == ("naive_mb", 5, 0.6, 0.8)
    assert TrackerConfig().mode == "hila_mb_near_online" and set(MODES) == {
        "hila_mb", "hila_mb_near_online", "naive_mb", "iou_stitch"}


@pytest.mark.parametrize("mapping, message", [
    ({"mode": "sort"}, "p.yaml: tracker.mode: 'sort' is not one of 'hila_mb'"),
    ({"lam": 1.5}, "p.yaml: tracker.lam: 1.5 is out of range, must be <= 1.0"),
    ({"temperature": 0}, "p.yaml: tracker.temperature: 0.0 is out of range, must be > 0.0"),
    ({"alpha": -0.1}, "p.yaml: tracker.alpha: -0.1 is out of range, must be >= 0.0"),
    ({"tau": -1}, "p.yaml: tracker.tau: -1 is out of range, must be >= 0"),
    ({"tau": 2.5}, "p.yaml: tracker.tau: expected an integer"),
    ({"stitch_iou": 0.0}, "p.yaml: tracker.stitch_iou: 0.0 is out of range, must be > 0.0"),
    ({"lambda": 0.5}, "p.yaml: tracker: unknown key(s) lambda"),
])
def test_bad_config_values_name_the_key(mapping, message):
    with pytest.raises(ConfigError) as info:
        from_mapping(TrackerConfig, mapping, "p.yaml: tracker")
    assert str(info.value).startswith(message)


def test_run_time_parameter_changes_are_validated():
    assert validate_value(TrackerConfig, "alpha", 0.3, "param tracker.alpha") == 0.3
    with pytest.raises(ConfigError, match="param tracker.mode: 'x' is not one of"):
        validate_value(TrackerConfig, "mode", "x", "param tracker.mode")


def test_objects_describe_seen_and_held_things():
    tracker = make_tracker(TrackerConfig())
    assert tracker.objects() == []
    tracker.update(frame_of([BOX, (300, 140, 340, 200)], [E0, E1], [CAR, PEDESTRIAN]))
    tracker.update(frame_of([shifted(BOX, 6)], [E0]))
    car, pedestrian = tracker.objects()
    assert (car.track_id, car.class_id, car.is_thing, car.area, car.age) == (1, CAR, True, 3000, 1)
    assert car.box == tuple(float(v) for v in shifted(BOX, 6))
    assert car.velocity == pytest.approx((6.0, 0.0))
    assert math.isclose(car.score, 0.9, rel_tol=1e-6) and not car.box_is_predicted
    assert (pedestrian.track_id, pedestrian.class_id, pedestrian.area) == (2, PEDESTRIAN, 0)
    assert (pedestrian.frames_since_seen, pedestrian.box_is_predicted) == (1, True)
    assert pedestrian.box == pytest.approx((300, 140, 340, 200))     # no motion seen yet


def test_reset_forgets_objects_ids_and_statistics():
    tracker = make_tracker(TrackerConfig())
    for dx in range(3):
        tracker.update(frame_of([shifted(BOX, dx), (300, 140, 340, 200)], [E0, E1]))
    tracker.reset()
    assert tracker.objects() == [] and tracker.matching_space() == MatchingSpace()
    assert tracker.update(frame_of([(300, 140, 340, 200)], [E1])).tolist() == [0, 1]
    assert tracker.objects()[0].age == 0


def test_update_config_keeps_the_memory():
    tracker = make_tracker(TrackerConfig())
    tracker.update(frame_of([BOX], [E0]))
    tracker.update(frame_of([], []))
    tracker.update_config(TrackerConfig(alpha=0.2, tau=10))
    assert tracker.config.alpha == 0.2
    assert tracker.update(frame_of([BOX], [E0])).tolist() == [0, 1]
    with pytest.raises(TypeError):
        tracker.update_config({"alpha": 0.2})


def test_switching_to_iou_stitching_drops_objects_held_only_in_memory():
    tracker = make_tracker(TrackerConfig())
    tracker.update(frame_of([BOX, (300, 140, 340, 200)], [E0, E1]))
    tracker.update(frame_of([BOX], [E0]))
    assert len(tracker.objects()) == 2
    tracker.update_config(TrackerConfig(mode="iou_stitch"))
    assert tracker.update(frame_of([shifted(BOX, 4)], [E0])).tolist() == [0, 1]
    assert [o.track_id for o in tracker.objects()] == [1]
    assert tracker.update(frame_of([(300, 140, 340, 200)], [E1])).tolist() == [0, 3]


def test_matching_space_records_m_by_n_per_frame():
    frames = [frame_of([BOX, (300, 140, 340, 200)], [E0, E1]),
              frame_of([shifted(BOX, 2), (300, 140, 340, 200)], [E0, E1]),
              frame_of([shifted(BOX, 4)], [E0])]
    expected = {"hila_mb": [(0, 2), (2, 2), (2, 1)],
                "naive_mb": [(0, 2), (2, 2), (2, 1)],
                "iou_stitch": [(0, 2), (2, 2), (2, 1)],
                "hila_mb_near_online": [(0, 2), (0, 0), (1, 0)]}    # stitched pairs leave
    for mode, sizes in expected.items():
        tracker = make_tracker(TrackerConfig(mode=mode))
        for frame, size in zip(frames, sizes):
            tracker.update(frame)
            assert tracker.matching_space().last == size, mode
        space = tracker.matching_space()
        products = [m * n for m, n in sizes]
        assert (space.frames, space.total, space.largest) == (3, sum(products), max(products))
        assert space.mean == pytest.approx(sum(products) / 3)


def test_matching_space_summaries_merge():
    a, b = MatchingSpace(), MatchingSpace()
    a.record(3, 4)
    b.record(2, 2)
    b.record(0, 5)
    merged = a.merge(b)
    assert (merged.frames, merged.total, merged.largest, merged.last) == (3, 16, 12, (0, 5))
    assert MatchingSpace().mean == 0.0


def test_near_online_stitches_by_mask_before_the_memory():
    # The appearance flips completely between frames while the mask barely moves:
    # stitching keeps the id, the appearance-based memory alone cannot.
    for mode, same in [("hila_mb_near_online", True), ("iou_stitch", True), ("hila_mb", False)]:
        tracker = make_tracker(TrackerConfig(mode=mode))
        tracker.update(frame_of([BOX], [E0]))
        assert bool(tracker.update(frame_of([shifted(BOX, 5)], [E1]))[1] == 1) is same, mode


def test_near_online_hands_what_stitching_misses_to_the_memory():
    tracker = make_tracker(TrackerConfig(mode="hila_mb_near_online"))
    tracker.update(frame_of([BOX, (300, 140, 340, 200)], [E0, E1]))
    # The car jumps by 40 px (mask IoU 0.2 < 0.5): memory stage, 1 x 1 after stitching.
    ids = tracker.update(frame_of([shifted(BOX, 40), (300, 140, 340, 200)], [E0, E1]))
    assert ids.tolist() == [0, 1, 2]
    assert tracker.matching_space().last == (1, 1)
    # Hidden for two frames: only the memory can bring its id back.
    tracker.update(frame_of([(300, 140, 340, 200)], [E1]))
    tracker.update(frame_of([(300, 140, 340, 200)], [E1]))
    ids = tracker.update(frame_of([shifted(BOX, 40), (300, 140, 340, 200)], [E0, E1]))
    assert ids.tolist() == [0, 1, 2]


def test_iou_stitching_has_no_memory_and_gates_classes():
    tracker = make_tracker(TrackerConfig(mode="iou_stitch"))
    tracker.update(frame_of([BOX], [E0]))
    assert tracker.update(frame_of([BOX], [E0], [PEDESTRIAN])).tolist() == [0, 2]
    tracker.update(frame_of([], []))
    assert tracker.update(frame_of([BOX], [E0], [PEDESTRIAN])).tolist() == [0, 3]


def test_a_new_image_size_normalises_boxes_and_skips_stitching():
    for mode in MODES:
        tracker = make_tracker(TrackerConfig(mode=mode))
        tracker.update(frame_of([BOX], [E0]))
        half = tuple(v // 2 for v in BOX)
        ids = tracker.update(frame_of([half], [E0], size=(128, 256)))
        assert ids[1] == (2 if mode == "iou_stitch" else 1), mode


def test_frames_the_memory_cannot_take_raise_data_errors():
    tracker = make_tracker(TrackerConfig())
    tracker.update(frame_of([BOX], [E0]))
    with pytest.raises(DataError, match="tracker frame 1: 8-d embeddings, but the memory "
                                        "holds 4-d appearances; reset the tracker"):
        tracker.update(frame_of([BOX], [np.ones(8)], dim=8))
    tracker.reset()
    assert tracker.update(frame_of([BOX], [np.ones(8)], dim=8)).tolist() == [0, 1]
    bad = frame_of([BOX], [E0])
    bad.embeddings = bad.embeddings.ravel()
    with pytest.raises(DataError, match=r"embeddings must be \(N, D\)"):
        tracker.update(bad)
