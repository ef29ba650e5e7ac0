"""The replay's scoring around the metric core: id switches and recoveries after
occlusion for the tracks timeline, dropped frames, latency figures."""
import numpy as np

from vps_ros.metrics import LabelSpace, evaluate_sequences
from vps_ros.replay.cameras import Camera, ReplayFrame
from vps_ros.replay.outputs import ReplayOutput
from vps_ros.replay.latency import latency_summary
from vps_ros.replay.scoring import ReplayScorer, TrackHistory
from vps_ros.types import ClassTable

CLASSES = ClassTable.builtin("synthetic")
SPACE = LabelSpace(CLASSES, 1000)
ROAD, CAR = CLASSES.id_of("road") * 1000, CLASSES.id_of("car") * 1000


def _map(car: int | None) -> np.ndarray:
    """A 20 x 40 road with, when ``car`` is given, car ``car`` in the left half."""
    panoptic = np.full((20, 40), ROAD, np.int32)
    if car is not None:
        panoptic[5:15, 2:18] = CAR + car
    return panoptic


def test_switches_and_recoveries_after_occlusion():
    history = TrackHistory()
    # ground-truth car 1: seen, seen, hidden, back (same id: recovery), then id changes
    for frame, (gt, pred) in enumerate([(1, 7), (1, 7), (None, None), (1, 7), (1, 9), (1, 9)]):
        history.add(frame, _map(gt), _map(pred), SPACE)
    assert [(e.frame, e.gt_id, e.pred_id, e.kind) for e in history.events] == \
        [(3, CAR + 1, CAR + 7, "recovery"), (4, CAR + 1, CAR + 9, "switch")]
    assert history.matches[2] == {} and history.matches[0] == {CAR + 1: CAR + 7}


def test_a_missed_frame_is_neither_switch_nor_recovery_and_back_under_another_id_is_a_switch():
    history = TrackHistory()
    for frame, (gt, pred) in enumerate([(1, 7), (1, None), (1, 7), (None, None), (1, 8)]):
        history.add(frame, _map(gt), _map(pred), SPACE)
    assert history.matches[1] == {CAR + 1: 0}
    assert [(e.frame, e.kind) for e in history.events] == [(4, "switch")]


def test_dropped_frames_count_and_score_as_all_void_predictions():
    camera = Camera("front", "/front/image", "/front/gt")
    scorer = ReplayScorer([camera], CLASSES, 1000, (1, 2))
    gts = [_map(1), _map(1), _map(1)]
    image = np.zeros((20, 40, 3), np.uint8)
    outputs = [ReplayOutput("front", 0, _map(3), [], 12.0), None,
               ReplayOutput("front", 2, _map(3), [], 20.0)]
    for k, (gt, output) in enumerate(zip(gts, outputs)):
        scorer.add(ReplayFrame("front", k, k, image, gt), output)
    results = scorer.results()
    void = np.full((20, 40), CLASSES.void_id * 1000, np.int32)
    expected = evaluate_sequences([[(gts[0], _map(3)), (gts[1], void), (gts[2], _map(3))]],
                                  CLASSES, 1000, (1, 2))
    assert results["all"]["metrics"] == expected
    assert results["cameras"]["front"]["dropped_frames"] == 1
    assert results["all"]["frames"] == 3 and results["all"]["annotated_frames"] == 3
    assert results["all"]["latency_ms"]["p50"] == 16.0


def test_latency_summary():
    assert latency_summary([]) == {"p50": None, "p95": None, "mean": None, "max": None}
    figures = latency_summary([float(v) for v in range(1, 101)])
    assert figures["p50"] == 50.5 and figures["max"] == 100.0
    assert abs(figures["p95"] - 95.05) < 1e-9
