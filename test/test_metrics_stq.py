"""STQ rules on hand-computed cases (Weber et al. 2021; void and crowd as in the
KITTI-STEP reference code). Synthetic class table, label divisor 1000, void 255."""
import numpy as np
import pytest

from vps_ros.metrics import evaluate_sequences
from vps_ros.types import ClassTable

CLASSES = ClassTable.builtin("synthetic")
R, S, V = 0, 5000, 255000                 # road, sky, void
C1, C2, CC, T1 = 6001, 6002, 6000, 7001   # car 1, car 2, car crowd, truck 1


def stq(*sequences):
    return evaluate_sequences(
        [[(np.array([g], np.int32), np.array([p], np.int32)) for g, p in frames]
         for frames in sequences], CLASSES, 1000, (1,))


def test_perfect_prediction():
    result = stq([([R, C1, C1, S], [R, C1, C1, S]), ([R, C1, T1, S], [R, C1, T1, S])])
    assert (result["STQ"], result["AQ"], result["SQ"]) == (1.0, 1.0, 1.0)
    assert result["num_tracks"] == 2


def test_void_ground_truth_pixels_are_not_false_positives():
    result = stq([([V, V, R, R], [R, R, R, R])])
    assert result["SQ"] == 1.0                      # counting void rows would give 0.5


def test_predicted_void_on_a_labelled_pixel_counts_against_its_class_only():
    result = stq([([R, R, R, R], [R, R, V, V])])
    assert result["per_class"]["road"]["IoU"] == 0.5
    assert result["SQ"] == 0.5                      # void is not a class of the mean


def test_classes_with_an_empty_union_are_left_out_of_sq():
    result = stq([([R, R, S, S], [R, R, R, S])])
    # road 2 / 3, sky 1 / 2; the other eight classes never appear
    assert result["SQ"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert result["per_class"]["car"]["IoU"] is None


def test_crowd_pixels_are_left_out_of_predicted_tracks():
    # |g| = 2, |p| = 4 - 2 crowd pixels = 2, TPA = 2 -> AQ 1 (0.5 if crowd counted)
    result = stq([([C1, C1, CC, CC], [C1, C1, C1, C1])])
    assert result["AQ"] == 1.0 and result["num_tracks"] == 1


def test_void_ground_truth_stays_in_predicted_track_size():
    # |g| = 2, |p| = 4 (2 on void), TPA 2: IoU_id = 2 / 4, AQ = (1/2) * 2 * 0.5
    result = stq([([C1, C1, V, V], [C1, C1, C1, C1])])
    assert result["AQ"] == pytest.approx(0.5)


def test_tracks_exist_only_on_thing_classes():
    no_things = stq([([R, R, S, S], [C1, C1, S, S])])
    assert no_things["num_tracks"] == 0
    assert no_things["AQ"] is None and no_things["STQ"] is None
    # a stuff prediction is no track: |p| = 2 for car 1, TPA 2, |g| 4: AQ (1/4)*2*(2/4)
    stuff_pred = stq([([C1, C1, C1, C1], [C1, C1, R, R])])
    assert stuff_pred["AQ"] == pytest.approx(0.25)


def test_association_ignores_the_predicted_class():
    # car 1 and truck 1 predicted with swapped classes: every track perfectly associated,
    # but both classes have IoU 0.
    result = stq([([C1, C1, T1, T1, R, R], [T1, T1, C1, C1, R, R])])
    assert result["AQ"] == 1.0
    assert result["SQ"] == pytest.approx(1 / 3)
    assert result["STQ"] == pytest.approx(np.sqrt(1 / 3))


def test_a_track_split_in_two_ids_over_the_sequence():
    gt = [[C1, C1, R, R, R, R], [R] * 6, [C1, C1, R, R, R, R]]
    pred = [[C1, C1, R, R, R, R], [R] * 6, [C2, C2, R, R, R, R]]
    # |g| = 4; each predicted id: TPA 2, IoU_id 2/4 -> AQ (1/4)(2*0.5 + 2*0.5) = 0.5
    result = stq(list(zip(gt, pred)))
    assert result["AQ"] == pytest.approx(0.5)
    assert result["SQ"] == 1.0
    assert result["STQ"] == pytest.approx(np.sqrt(0.5))


def test_aq_averages_over_the_tracks_of_all_sequences():
    perfect = [([C1, C1, R], [C1, C1, R])]
    split = [([C1, C1, R], [C1, C1, R]), ([C1, C1, R], [C2, C2, R])]
    result = stq(perfect, split)
    # the same id in two sequences is two tracks: (1 + 0.5) / 2
    assert result["num_tracks"] == 2
    assert result["AQ"] == pytest.approx(0.75)
