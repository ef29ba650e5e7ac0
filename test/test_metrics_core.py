"""The metric core's parts: pair tables, label decoding, image PQ, frame errors."""
import numpy as np
import pytest

from vps_ros.errors import ConfigError, DataError
from vps_ros.metrics import (LabelSpace, SequenceEvaluator, check_windows, evaluate_sequences,
                             panoptic_quality)
from vps_ros.metrics.tables import PairTable
from vps_ros.types import ClassTable

CLASSES = ClassTable.builtin("synthetic")
SPACE = LabelSpace(CLASSES, 1000)
R, S, V = 0, 5000, 255000
C1, C2, T1 = 6001, 6002, 7001


def _table_by_unique(gt, pred):
    pairs, counts = np.unique(np.stack([gt.ravel(), pred.ravel()], 1).astype(np.int64),
                              axis=0, return_counts=True)
    return pairs[:, 0].tolist(), pairs[:, 1].tolist(), counts.tolist()


@pytest.mark.parametrize("top", [300, 5_000_000])   # lookup-table path and sort path
def test_pair_table_counts_every_pair_of_ids(top):
    rng = np.random.default_rng(top)
    values = rng.choice(top, size=12, replace=False)
    gt = rng.choice(values, size=(30, 40)).astype(np.int32)
    pred = rng.choice(values, size=(30, 40)).astype(np.int32)
    table = PairTable.from_maps(gt, pred)
    assert (table.gt.tolist(), table.pred.tolist(), table.count.tolist()) == \
        _table_by_unique(gt, pred)


def test_combined_tables_equal_the_table_of_the_stacked_frames():
    rng = np.random.default_rng(1)
    frames = [(rng.integers(0, 9, (5, 6)), rng.integers(0, 9, (5, 6))) for _ in range(3)]
    combined = PairTable.combine([PairTable.from_maps(g, p) for g, p in frames])
    stacked = PairTable.from_maps(np.stack([g for g, _ in frames]), np.stack([p for _, p in frames]))
    for field in ("gt", "pred", "count"):
        assert getattr(combined, field).tolist() == getattr(stacked, field).tolist()


def test_label_space_decodes_class_void_and_unknown_ids():
    ids = np.array([0, 6001, 9999, 255000, 255007, 10000, 12345])
    assert SPACE.class_index(ids[:5]).tolist() == [0, 6, 9, 10, 10]   # void -> index 10
    assert SPACE.unknown_ids(ids).tolist() == [10000, 12345]
    with pytest.raises(ConfigError, match="label divisor"):
        LabelSpace(CLASSES, 10_000_000)


def test_check_windows_sorts_and_rejects_bad_sizes():
    assert check_windows([4, 1, 2, 2]) == (1, 2, 4)
    for bad in ([], [0, 1], [-2]):
        with pytest.raises(ConfigError, match="window sizes"):
            check_windows(bad)


def test_panoptic_quality_of_images():
    # image 1 perfect; image 2: car missed, a spurious truck
    pairs = [(np.array([[R, R, C1, C1]]), np.array([[R, R, C1, C1]])),
             (np.array([[R, R, C1, C1]]), np.array([[R, R, T1, T1]]))]
    result = panoptic_quality(pairs, CLASSES, 1000)
    assert result["per_class"]["car"] == {"PQ": pytest.approx(2 / 3), "SQ": 1.0,
                                          "RQ": pytest.approx(2 / 3), "TP": 1, "FP": 0, "FN": 1}
    assert result["per_class"]["truck"]["FP"] == 1 and result["per_class"]["truck"]["PQ"] == 0
    assert result["PQ"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert result["PQ_things"] == pytest.approx(1 / 3) and result["PQ_stuff"] == 1.0
    assert result["SQ"] == pytest.approx(2 / 3) and result["RQ"] == pytest.approx(5 / 9)
    assert result["num_images"] == 2
    video = evaluate_sequences([pairs], CLASSES, 1000, (1,))
    assert video["VPQ"] == result["PQ"]              # PQ is VPQ with one-frame windows


def test_panoptic_quality_of_nothing_is_undefined():
    result = panoptic_quality([], CLASSES, 1000)
    assert result["PQ"] is None and result["num_images"] == 0


@pytest.mark.parametrize("gt, pred, message", [
    (np.zeros((4, 6), np.int32), np.zeros((4, 5), np.int32),
     r"sequence 'seq', frame 7: prediction is 5x4 pixels but ground truth is 6x4"),
    (np.zeros((4, 6), np.int32), np.full((4, 6), 12001, np.int32),
     r"frame 7: prediction has ids of unknown classes \[12001\]"),
    (np.full((2, 2), 300000, np.int32), np.zeros((2, 2), np.int32),
     r"frame 7: ground truth has ids of unknown classes \[300000\]"),
    (np.zeros((2, 2), np.int32), np.full((2, 2), -1, np.int32),
     r"frame 7: prediction has negative panoptic ids"),
    (np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int32),
     r"frame 7: ground truth must be a 2-D integer panoptic map"),
])
def test_bad_frames_raise_data_errors_naming_sequence_and_frame(gt, pred, message):
    evaluator = SequenceEvaluator(SPACE, (1, 2), "seq")
    with pytest.raises(DataError, match=message):
        evaluator.add(gt, pred, frame=7)


def test_memory_holds_only_the_last_window_of_tables():
    evaluator = SequenceEvaluator(SPACE, (1, 3), "seq")
    for _ in range(10):
        evaluator.add(np.array([[R, C1]]), np.array([[R, C1]]))
    assert len(evaluator._vpq._recent) == 3
