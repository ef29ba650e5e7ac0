"""HiLA-MB pinned to the equations of seed 002: EMA (eq. 3), constant velocity (eq. 4),
similarity (eq. 5), Hungarian matching with the alpha threshold, memory refresh (tau),
per-class gating. Expected values are worked out by hand from the equations."""
import math

import numpy as np
import pytest

from testkit.tracking_scenes import CAR, HEIGHT, PEDESTRIAN, WIDTH, frame_of
from vps_ros.tracking import TrackerConfig, make_tracker
from vps_ros.tracking.memory import ObjectMemory
from vps_ros.tracking.similarity import cosine, location, mask_iou, match, pairwise_dot

BOX = (100, 60, 160, 100)
E0 = (1.0, 0.0, 0.0, 0.0)


def angle(degrees: float) -> tuple[float, ...]:
    r = math.radians(degrees)
    return (math.cos(r), math.sin(r), 0.0, 0.0)


def test_memory_encoding_follows_eq3_and_eq4():
    memory = ObjectMemory.empty(2)
    memory.append(np.array([7]), np.array([CAR]), np.array([[1.0, 0.0]]),
                  np.array([[0.1, 0.2, 0.3, 0.4]]), np.array([0.9]), frame=0)
    assert memory.velocity().tolist() == [[0.0, 0.0, 0.0, 0.0]]      # one box: no motion yet

    memory.observe(np.array([0]), np.array([[0.2, 0.2, 0.4, 0.5]]), np.array([[0.0, 1.0]]),
                   np.array([0.7]), frame=1, lam=0.8)
    np.testing.assert_allclose(memory.appearance, [[0.2, 0.8]])          # (1-l) q^ + l q
    np.testing.assert_allclose(memory.box, [[0.2, 0.2, 0.4, 0.5]])       # latest box
    np.testing.assert_allclose(memory.velocity(), [[0.1, 0.0, 0.1, 0.1]])
    assert memory.last_seen.tolist() == [1] and memory.first_seen.tolist() == [0]

    memory.coast(np.array([0]))                                          # only in memory
    np.testing.assert_allclose(memory.box, [[0.3, 0.2, 0.5, 0.6]])       # b + (b - b_prev)
    np.testing.assert_allclose(memory.appearance, [[0.2, 0.8]])          # q^ kept
    memory.coast(np.array([0]))
    np.testing.assert_allclose(memory.box, [[0.4, 0.2, 0.6, 0.7]])       # constant velocity


def test_similarity_terms_of_eq5():
    stored = np.array([[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.5, 0.5]])
    detected = np.array([[0.2, 0.2, 0.3, 0.5]])
    np.testing.assert_allclose(location(stored, detected, 0.2),
                               [[math.exp(-0.02 / 0.2)], [math.exp(-0.12 / 0.2)]])
    np.testing.assert_allclose(cosine(np.array([[3.0, 4.0], [2.0, 0.0]]), np.array([[4.0, 3.0]])),
                               [[0.96], [0.8]])


def test_large_products_in_row_blocks_equal_the_plain_product():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(53, 128)), rng.normal(size=(100, 128))   # 20-row blocks
    np.testing.assert_allclose(pairwise_dot(a, b), a @ b.T)
    assert pairwise_dot(a[:0], b).shape == (0, 100)


def test_hungarian_maximises_the_total_not_each_row():
    similarity = np.array([[0.9, 0.8], [0.85, 0.1]])
    rows, cols = match(similarity, similarity > 0.5)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]   # greedy: (0, 0) only


def test_pairs_below_alpha_cannot_displace_admissible_matches():
    # Hungarian on all of S would pick the diagonal (1.55 > 1.44) and the alpha filter
    # would then drop (1, 1), leaving one match; gating first matches both.
    similarity = np.array([[0.9, 0.72], [0.72, 0.65]])
    rows, cols = match(similarity, similarity > 0.7)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]


def test_mask_iou_of_listed_segments():
    previous = np.full((10, 40), -1, np.int32)
    previous[:, 0:10], previous[:, 20:30] = 0, 1
    current = np.full((10, 40), -1, np.int32)
    current[:, 5:15], current[:, 20:30], current[:, 35:40] = 2, 0, 1
    iou = mask_iou(previous, np.array([1, 0]), current, np.array([0, 2, 1]))
    np.testing.assert_allclose(iou, [[1.0, 0.0, 0.0], [0.0, 50 / 150, 0.0]])
    assert mask_iou(previous, np.array([0]), current[:, :20], np.array([0])).tolist() == [[0.0]]


def test_memory_appearance_is_the_moving_average():
    # Frame 1 looks 60 degrees away from frame 0. With lambda 0.8 the memory holds
    # 0.2 e0 + 0.8 e60, at 49.1 degrees; a detection at -12 degrees is 61.1 degrees from
    # it (cos 0.48 > alpha 0.4) but 72 degrees from e60 alone (cos 0.31).
    def ids(lam):
        tracker = make_tracker(TrackerConfig(mode="hila_mb", lam=lam, alpha=0.4))
        return [int(tracker.update(frame_of([BOX], [angle(a)]))[1]) for a in (0, 60, -12)]

    assert ids(0.8) == [1, 1, 1]
    assert ids(1.0) == [1, 1, 2]       # memory = latest appearance only


def test_constant_velocity_prediction_while_unseen():
    tracker = make_tracker(TrackerConfig(mode="hila_mb"))
    for box in [(100, 50, 140, 80), (110, 52, 150, 82)]:
        tracker.update(frame_of([box], [E0]))
    for k, expected in [(1, (120, 54, 160, 84)), (2, (130, 56, 170, 86))]:
        tracker.update(frame_of([], []))
        (held,) = tracker.objects()
        assert held.box_is_predicted and held.frames_since_seen == k and held.area == 0
        np.testing.assert_allclose(held.box, expected)
        np.testing.assert_allclose(held.velocity, (10.0, 2.0))
        assert held.age == k + 1
    ids = tracker.update(frame_of([(140, 58, 180, 88)], [E0]))
    assert ids[1] == 1
    (seen,) = tracker.objects()
    assert not seen.box_is_predicted and seen.frames_since_seen == 0
    np.testing.assert_allclose(seen.velocity, (10.0, 2.0))


@pytest.mark.parametrize("alpha, matched", [(0.67, True), (0.70, False)])
def test_match_counts_only_above_alpha(alpha, matched):
    # Box moved 64 px right on a 512 px wide image: d^2 = 2 * 0.125^2; cosine 0.8.
    expected = math.exp(-2 * 0.125 ** 2 / 0.2) * 0.8
    assert 0.67 < expected < 0.70
    tracker = make_tracker(TrackerConfig(mode="hila_mb", alpha=alpha, temperature=0.2))
    tracker.update(frame_of([BOX], [E0]))
    moved = (BOX[0] + 64, BOX[1], BOX[2] + 64, BOX[3])
    ids = tracker.update(frame_of([moved], [(0.8, 0.6, 0.0, 0.0)]))
    assert bool(ids[1] == 1) is matched


def test_location_term_separates_what_appearance_alone_matches():
    far = (WIDTH - 80, HEIGHT - 60, WIDTH - 20, HEIGHT - 20)
    for mode, same in [("hila_mb", False), ("naive_mb", True)]:
        tracker = make_tracker(TrackerConfig(mode=mode))
        tracker.update(frame_of([(10, 10, 70, 50)], [E0]))
        assert bool(tracker.update(frame_of([far], [E0]))[1] == 1) is same, mode


@pytest.mark.parametrize("gap, same", [(3, True), (4, False)])
def test_memory_refresh_after_tau(gap, same):
    tracker = make_tracker(TrackerConfig(mode="hila_mb", tau=3))
    tracker.update(frame_of([BOX], [E0]))
    for k in range(1, gap + 1):
        tracker.update(frame_of([], []))
        held = tracker.objects()
        assert [o.frames_since_seen for o in held] == ([k] if k <= 3 else [])
    ids = tracker.update(frame_of([BOX], [E0]))
    assert ids[1] == (1 if same else 2)


def test_classes_are_matched_only_with_their_own_class():
    tracker = make_tracker(TrackerConfig(mode="hila_mb"))
    tracker.update(frame_of([BOX], [E0], [CAR]))
    ids = tracker.update(frame_of([BOX], [E0], [PEDESTRIAN]))
    assert ids[1] == 2
    assert [(o.track_id, o.class_id, o.frames_since_seen) for o in tracker.objects()] == [
        (2, PEDESTRIAN, 0), (1, CAR, 1)]

    # A car and a pedestrian in memory; the pedestrian's stored box and appearance match
    # the new car detection exactly, the car's only roughly: the car's id wins.
    tracker = make_tracker(TrackerConfig(mode="hila_mb"))
    tracker.update(frame_of([(60, 40, 120, 80), BOX], [angle(30), E0], [CAR, PEDESTRIAN]))
    ids = tracker.update(frame_of([BOX], [E0], [CAR]))
    assert ids[1] == 1


def test_stuff_segments_get_id_zero_and_empty_frames_pass():
    tracker = make_tracker(TrackerConfig(mode="hila_mb"))
    assert tracker.update(frame_of([], [])).tolist() == [0]
    assert tracker.update(frame_of([BOX], [E0])).tolist() == [0, 1]
