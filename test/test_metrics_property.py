"""The metric core agrees with the plain reference (testkit/metrics_reference.py) to 1e-9
on random sequences: VPQ per window (All / Things / Stuff and every class's IoU sum,
TP, FP, FN) and STQ / AQ / SQ with per-class IoU."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from testkit.metrics_reference import stq_reference, vpq_reference
from vps_ros.metrics import evaluate_sequences
from vps_ros.types import ClassInfo, ClassTable

CLASSES = ClassTable("prop", (ClassInfo(0, "road", False, (0, 0, 0)),
                              ClassInfo(1, "sky", False, (0, 0, 0)),
                              ClassInfo(2, "car", True, (0, 0, 0)),
                              ClassInfo(3, "person", True, (0, 0, 0))), void_id=9)
IS_THING = [False, False, True, True]
VOID = 9


def random_map(rng, shape, divisor, instances):
    classes = rng.choice([0, 1, 2, 3, VOID], size=shape, p=[.25, .15, .25, .2, .15])
    thing = np.isin(classes, [2, 3])
    inst = np.where(thing, rng.integers(0, instances + 1, size=shape), 0)
    return (classes * divisor + inst).astype(np.int32)


@st.composite
def datasets(draw):
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    divisor = draw(st.sampled_from([4, 1000]))
    instances = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 7)))
    noise = draw(st.floats(0.0, 0.6))
    sequences = []
    for _ in range(draw(st.integers(1, 3))):
        frames = []
        for _ in range(draw(st.integers(1, 6))):
            gt = random_map(rng, shape, divisor, instances)
            changed = rng.random(shape) < noise
            frames.append((gt, np.where(changed, random_map(rng, shape, divisor, instances), gt)))
        sequences.append(frames)
    windows = tuple(sorted(draw(st.sets(st.integers(1, 5), min_size=1, max_size=4))))
    return sequences, divisor, windows


def close(a, b):
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= 1e-9)


@settings(max_examples=150, deadline=None)
@given(datasets())
def test_core_matches_the_plain_reference(data):
    sequences, divisor, windows = data
    result = evaluate_sequences(sequences, CLASSES, divisor, windows)
    vpq = vpq_reference(sequences, IS_THING, VOID, divisor, windows)
    stq = stq_reference(sequences, IS_THING, VOID, divisor)

    for n in windows:
        assert close(result["VPQ_windows"][str(n)], vpq[n]["VPQ"])
        assert close(result["VPQ_things_windows"][str(n)], vpq[n]["things"])
        assert close(result["VPQ_stuff_windows"][str(n)], vpq[n]["stuff"])
        for c in CLASSES:
            ours = result["per_class"][c.name]["windows"][str(n)]
            iou, tp, fp, fn = vpq[n]["per_class"].get(c.id, [0.0, 0, 0, 0])
            assert (ours["TP"], ours["FP"], ours["FN"]) == (tp, fp, fn)
            assert abs(ours["IoU_sum"] - iou) <= 1e-9
    per_window = [vpq[n]["VPQ"] for n in windows]
    assert close(result["VPQ"], None if None in per_window else float(np.mean(per_window)))
    for key in ("STQ", "AQ", "SQ"):
        assert close(result[key], stq[key])
    for c in CLASSES:
        assert close(result["per_class"][c.name]["IoU"], stq["iou"].get(c.id))
