"""VPQ rules on hand-computed cases (seed 001 section III-B, eq. 1; void and crowd as in
image PQ). Maps use the synthetic class table: road 0, sky 5 stuff; car 6, truck 7
things; label divisor 1000; void 255."""
import numpy as np
import pytest

from vps_ros.metrics import evaluate_sequences
from vps_ros.types import ClassTable

CLASSES = ClassTable.builtin("synthetic")
R, S, V = 0, 5000, 255000                 # road, sky, void
C1, C2, CC, T1 = 6001, 6002, 6000, 7001   # car 1, car 2, car crowd, truck 1


def vpq(*sequences, windows=(1,)):
    """Result of sequences given as lists of (gt row, pred row) frames."""
    return evaluate_sequences(
        [[(np.array([g], np.int32), np.array([p], np.int32)) for g, p in frames]
         for frames in sequences], CLASSES, 1000, windows)


def test_perfect_prediction_scores_one_and_counts_every_tube():
    result = vpq([([R, R, C1, C1, T1, S], [R, R, C1, C1, T1, S])])
    assert result["VPQ"] == 1.0 and result["VPQ_things"] == 1.0 and result["VPQ_stuff"] == 1.0
    car = result["per_class"]["car"]["windows"]["1"]
    assert (car["TP"], car["FP"], car["FN"], car["IoU_sum"]) == (1, 0, 0, 1.0)


def test_void_pixels_of_the_predicted_tube_leave_the_union():
    # car: pred 6 px (4 on car, 1 on void, 1 on road): union 6 + 4 - 4 - 1 = 5, IoU 0.8.
    # road: gt 5 px, pred 4 px inside it: IoU 0.8.
    result = vpq([([C1, C1, C1, C1, V, R, R, R, R, R], [C1, C1, C1, C1, C1, C1, R, R, R, R])])
    assert result["per_class"]["car"]["VPQ"] == pytest.approx(0.8)
    assert result["per_class"]["road"]["VPQ"] == pytest.approx(0.8)
    assert result["VPQ"] == pytest.approx(0.8)


def test_unmatched_prediction_mostly_on_void_is_not_a_false_positive():
    result = vpq([([R, R, R, R, V, V, V], [R, R, R, R, C1, C1, C1])])
    assert result["per_class"]["car"]["windows"]["1"]["FP"] == 0
    assert result["VPQ"] == 1.0 and result["VPQ_things"] is None


@pytest.mark.parametrize("gt, pred, expected", [
    # a third on void: FP. road IoU 4/6, car 0 -> (2/3 + 0) / 2
    ([R, R, R, R, V, R, R], [R, R, R, R, C1, C1, C1], (2 / 3) / 2),
    # exactly half on void is not "more than half": FP. road IoU 3/4
    ([R, R, R, V, R], [R, R, R, C1, C1], 0.75 / 2),
])
def test_prediction_with_at_most_half_on_void_is_a_false_positive(gt, pred, expected):
    result = vpq([(gt, pred)])
    assert result["per_class"]["car"]["windows"]["1"]["FP"] == 1
    assert result["VPQ"] == pytest.approx(expected)


def test_crowd_is_neither_true_positive_nor_false_negative_and_covers_its_class():
    # The car crowd predicted exactly as a car: no TP, no FN, no FP.
    result = vpq([([CC, CC, CC, R, R], [C1, C1, C1, R, R])])
    car = result["per_class"]["car"]["windows"]["1"]
    assert (car["TP"], car["FP"], car["FN"]) == (0, 0, 0)
    assert result["VPQ"] == 1.0


def test_crowd_of_another_class_does_not_excuse_a_false_positive():
    result = vpq([([CC, CC, CC, R, R], [T1, T1, T1, R, R])])
    assert result["per_class"]["truck"]["windows"]["1"]["FP"] == 1
    assert result["VPQ"] == pytest.approx(0.5)


def test_void_and_crowd_together_excuse_a_prediction():
    # car pred: 1 px void + 1 px car crowd + 1 px road = 2/3 ignored regions -> no FP
    result = vpq([([V, CC, R, R, R, R], [C1, C1, C1, R, R, R])])
    assert result["per_class"]["car"]["windows"]["1"]["FP"] == 0
    assert result["VPQ"] == pytest.approx(0.75)


def test_classes_without_any_segment_are_left_out_of_the_mean():
    result = vpq([([R, R, C1, C1], [R, R, C1, C1])])
    assert result["per_class"]["sky"]["VPQ"] is None
    assert result["VPQ"] == 1.0                     # not 2/10 over all ten classes


def test_ids_reused_across_classes_are_different_tubes():
    same = vpq([([C1, C1, T1, T1, R, R], [C1, C1, T1, T1, R, R])])
    assert same["per_class"]["car"]["windows"]["1"]["TP"] == 1
    assert same["per_class"]["truck"]["windows"]["1"]["TP"] == 1
    swapped = vpq([([C1, C1, T1, T1, R, R], [T1, T1, C1, C1, R, R])])
    car = swapped["per_class"]["car"]["windows"]["1"]
    assert (car["TP"], car["FP"], car["FN"]) == (0, 1, 1)
    assert swapped["VPQ"] == pytest.approx(1 / 3)


def test_iou_of_exactly_one_half_is_not_a_match():
    result = vpq([([C1, C1, R, R], [C1, C1, C1, C1])])
    road = result["per_class"]["road"]["windows"]["1"]
    car = result["per_class"]["car"]["windows"]["1"]
    assert (road["TP"], road["FN"]) == (0, 1)      # road: gt 2 px, no road prediction
    assert (car["TP"], car["FP"], car["FN"]) == (0, 1, 1)   # car IoU 2/4


LEAVES_AND_RETURNS_GT = [[C1, C1, R, R, R, R], [R] * 6, [C1, C1, R, R, R, R]]


def test_a_track_that_leaves_and_comes_back_with_its_id_is_one_tube():
    frames = [(g, g) for g in LEAVES_AND_RETURNS_GT]
    result = vpq(frames, windows=(1, 2, 3))
    assert result["VPQ_windows"] == {"1": 1.0, "2": 1.0, "3": 1.0}


def test_a_track_that_comes_back_with_a_new_id_fails_the_long_window():
    preds = [[C1, C1, R, R, R, R], [R] * 6, [C2, C2, R, R, R, R]]
    result = vpq(list(zip(LEAVES_AND_RETURNS_GT, preds)), windows=(1, 2, 3))
    # windows of 1 and 2 frames never see both car ids; the 3-frame tube (4 px) has
    # IoU 2/4 with each predicted car tube: no match, 1 FN and 2 FP.
    assert result["VPQ_windows"]["1"] == 1.0 and result["VPQ_windows"]["2"] == 1.0
    car = result["per_class"]["car"]["windows"]["3"]
    assert (car["TP"], car["FP"], car["FN"]) == (0, 2, 1)
    assert result["VPQ_windows"]["3"] == pytest.approx(0.5)
    assert result["VPQ"] == pytest.approx(2.5 / 3)


def test_tube_iou_pools_the_pixels_of_the_window():
    # frame 0 perfect; frame 1 the car is predicted 1 px wide: frame IoU 1/2 (no match
    # alone), tube IoU (2 + 1) / 4 = 0.75 over the 2-frame window.
    frames = [([C1, C1, R, R], [C1, C1, R, R]), ([C1, C1, R, R], [C1, R, R, R])]
    result = vpq(frames, windows=(1, 2))
    assert result["per_class"]["car"]["windows"]["1"]["TP"] == 1
    two = result["per_class"]["car"]["windows"]["2"]
    assert two["TP"] == 1 and two["IoU_sum"] == pytest.approx(0.75)


def test_windows_longer_than_a_sequence_take_nothing_from_it():
    short = [([R, C1], [R, C1])] * 2
    result = vpq(short, windows=(1, 2, 3))
    assert result["VPQ_windows"] == {"1": 1.0, "2": 1.0, "3": None}
    assert result["VPQ"] is None                    # VPQ^3 undefined -> VPQ undefined
    # a longer sequence beside it supplies the 3-frame windows; a bad 3-frame window
    # shows that only it counts there
    longer = [([R, C1], [R, C1]), ([R, C1], [R, C1]), ([R, C1], [R, C2])]
    result = vpq(short, longer, windows=(1, 2, 3))
    car3 = result["per_class"]["car"]["windows"]["3"]
    # the car tube (3 px) matches car 1 (2 px, IoU 2/3); car 2 (1 px) is a FP
    assert (car3["TP"], car3["FP"], car3["FN"]) == (1, 1, 0)
    assert car3["IoU_sum"] == pytest.approx(2 / 3)


def test_window_counts_add_over_every_window_position():
    frames = [([R, C1], [R, C1])] * 4
    result = vpq(frames, windows=(1, 2, 4))
    tps = {n: result["per_class"]["car"]["windows"][n]["TP"] for n in ("1", "2", "4")}
    assert tps == {"1": 4, "2": 3, "4": 1}


def test_empty_prediction_is_valid_and_scores_zero():
    result = vpq([([R, R, C1, C1], [V, V, V, V])] * 2, windows=(1, 2))
    assert result["VPQ"] == 0.0 and result["STQ"] == 0.0
    assert result["per_class"]["car"]["windows"]["1"]["FN"] == 2


def test_things_and_stuff_means_split_by_class_kind():
    # road perfect; car missed; sky predicted as road -> sky FN, road FP
    result = vpq([([R, R, R, C1, S, S, S, S], [R, R, R, V, R, R, R, R])])
    # road: gt 3 px, pred 7 px, IoU 3/7 -> no match: FN + FP; sky FN; car FN
    assert result["VPQ_things"] == 0.0
    assert result["VPQ_stuff"] == 0.0
    result = vpq([([R, R, R, C1, S, S], [R, R, R, V, S, S])])
    assert result["VPQ_things"] == 0.0 and result["VPQ_stuff"] == 1.0
    assert result["VPQ"] == pytest.approx(2 / 3)
