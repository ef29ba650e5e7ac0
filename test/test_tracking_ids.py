"""Track ids: 1..label_divisor-1, never handed out while held in memory, recycled round
robin, so the panoptic encoding class*label_divisor + id never overflows."""
import numpy as np
import pytest

from testkit.tracking_scenes import CAR, frame_of, unit
from vps_ros import panoptic
from vps_ros.errors import ConfigError, DataError
from vps_ros.tracking import TrackerConfig, make_tracker
from vps_ros.tracking.ids import IdPool


def test_id_pool_hands_out_released_ids_last():
    pool = IdPool(label_divisor=6)                    # ids 1..5
    assert pool.allocate(3).tolist() == [1, 2, 3]
    pool.release(np.array([2]))
    assert pool.allocate(2).tolist() == [4, 5]        # 2 waits until the others are used
    assert pool.free == 1
    pool.release(np.array([1, 4]))
    assert pool.allocate(3).tolist() == [1, 2, 4]     # wrapped around
    assert pool.free == 0 and pool.capacity == 5
    with pytest.raises(RuntimeError):
        pool.allocate(1)


def _churn(label_divisor: int, frames: int, seed: int = 0):
    """Objects at fixed slots with distinct looks come and go at random; per frame
    yield (names of visible objects, their ids, ids held in memory before the frame)."""
    rng = np.random.default_rng(seed)
    tracker = make_tracker(TrackerConfig(mode="hila_mb", tau=4), label_divisor=label_divisor)
    slots = [(20 + 60 * k, 140, 70 + 60 * k, 190) for k in range(6)]
    occupant = [None] * len(slots)
    looks, born = {}, 0
    for _ in range(frames):
        held_before = {o.track_id for o in tracker.objects()}
        for k in range(len(slots)):
            if occupant[k] is None or rng.random() < 0.08:     # a new object takes the slot
                occupant[k] = f"object{born}"
                looks[occupant[k]] = unit(rng.normal(size=256))
                born += 1
        visible = [k for k in range(len(slots)) if rng.random() < 0.7]
        ids = tracker.update(frame_of([slots[k] for k in visible],
                                      [looks[occupant[k]] for k in visible], dim=256))
        yield [occupant[k] for k in visible], ids, held_before, tracker


def test_an_id_goes_to_a_new_object_only_after_its_holder_left_memory():
    owner = {}
    distinct_objects = set()
    for names, ids, held_before, tracker in _churn(label_divisor=40, frames=400):
        things = ids[1:].tolist()
        assert all(1 <= i <= 39 for i in things)
        for name, track_id in zip(names, things):
            if track_id not in held_before:           # a new object got a free id
                owner[track_id] = name
            assert owner[track_id] == name, "an id held in memory went to another object"
        distinct_objects.update(names)
    assert len(distinct_objects) > 2 * 39          # ids were recycled several times over


def test_under_id_pressure_ids_stay_in_range_and_unique_in_memory():
    for names, ids, _, tracker in _churn(label_divisor=10, frames=400):
        things = ids[1:].tolist()
        assert all(1 <= i <= 9 for i in things)
        assert len(set(things)) == len(things)
        held = [o.track_id for o in tracker.objects()]
        assert len(set(held)) == len(held) <= 9


def test_panoptic_encoding_holds_after_recycling():
    for names, ids, _, tracker in _churn(label_divisor=10, frames=100, seed=1):
        classes = np.array([0] + [CAR] * len(names))
        segment_map = np.arange(len(ids), dtype=np.int32).reshape(1, -1)
        pan = panoptic.from_segments(segment_map, classes, ids, label_divisor=10)
        decoded_classes, decoded_ids = panoptic.decode(pan, label_divisor=10)
        assert decoded_classes.ravel().tolist() == classes.tolist()
        assert decoded_ids.ravel().tolist() == ids.tolist()


def test_when_every_id_is_held_the_longest_unseen_object_is_evicted():
    looks = {name: unit(np.eye(4)[k]) for k, name in enumerate("ABCD")}
    boxes = {"A": (10, 140, 60, 190), "B": (110, 140, 160, 190), "C": (210, 140, 260, 190),
             "D": (310, 140, 360, 190)}
    tracker = make_tracker(TrackerConfig(mode="hila_mb", tau=100), label_divisor=4)     # ids 1..3

    def show(names):
        return tracker.update(frame_of([boxes[n] for n in names], [looks[n] for n in names]))

    assert show("ABC").tolist() == [0, 1, 2, 3]
    show("AB")
    show("A")
    assert show("AD").tolist() == [0, 1, 3]       # C, unseen longest, freed id 3
    assert [(o.track_id, o.frames_since_seen) for o in tracker.objects()] == [
        (1, 0), (3, 0), (2, 2)]


def test_a_frame_with_more_things_than_ids_is_rejected_without_harm():
    tracker = make_tracker(TrackerConfig(mode="hila_mb"), label_divisor=4)
    looks = [unit(np.eye(4)[k]) for k in range(4)]
    boxes = [(10 + 100 * k, 140, 60 + 100 * k, 190) for k in range(4)]
    assert tracker.update(frame_of(boxes[:2], looks[:2])).tolist() == [0, 1, 2]
    with pytest.raises(DataError, match="tracker frame 1: 4 thing segments, but "
                                        "label_divisor 4 allows only 3 track ids"):
        tracker.update(frame_of(boxes, looks))
    assert tracker.update(frame_of(boxes[:2], looks[:2])).tolist() == [0, 1, 2]
    assert [o.age for o in tracker.objects()] == [1, 1]


def test_label_divisor_is_checked():
    with pytest.raises(ConfigError, match="tracker: label_divisor must be >= 2"):
        make_tracker(TrackerConfig(mode="hila_mb"), label_divisor=1)
