"""Hungarian matching on hand-made cases, and optimality against brute force."""
import itertools

import numpy as np
import torch

from vps_ros.train.matcher import hungarian_match, match_cost

C = 3  # classes; index 3 is "no object"


def class_logits(*classes):
    logits = torch.full((len(classes), C + 1), -5.0)
    for i, c in enumerate(classes):
        logits[i, c] = 5.0
    return logits


def masks(*pixel_sets, pixels=8):
    out = torch.zeros(len(pixel_sets), pixels)
    for i, on in enumerate(pixel_sets):
        out[i, list(on)] = 1.0
    return out


def test_each_segment_gets_the_query_that_predicts_it():
    targets = masks({0, 1, 2}, {5, 6, 7})
    queries = torch.stack([masks({5, 6, 7})[0], masks({3})[0], masks({0, 1, 2})[0]]) * 20 - 10
    cost = match_cost(class_logits(2, 0, 1), queries, torch.tensor([1, 2]), targets, 2, 5, 5)
    rows, cols = hungarian_match(cost)
    assert rows.tolist() == [2, 0] and cols.tolist() == [0, 1]


def test_the_class_cost_decides_between_equal_masks():
    same = masks({0, 1, 2, 3}) * 20 - 10
    cost = match_cost(class_logits(0, 2), torch.cat([same, same]), torch.tensor([2]),
                      masks({0, 1, 2, 3}), 2, 5, 5)
    assert hungarian_match(cost)[0].tolist() == [1]


def test_dice_and_bce_costs_of_perfect_and_opposite_masks():
    target = masks({0, 1, 2, 3})
    perfect, opposite = target * 40 - 20, (1 - target) * 40 - 20
    cost = match_cost(class_logits(0, 0), torch.cat([perfect, opposite]), torch.tensor([0]),
                      target, 0, 0, 1)
    assert cost[0, 0] < 1e-3 and abs(float(cost[1, 0]) - (1 - 1 / 9)) < 1e-5  # smoothed dice
    cost = match_cost(class_logits(0, 0), torch.cat([perfect, opposite]), torch.tensor([0]),
                      target, 0, 1, 0)
    assert cost[0, 0] < 1e-6 and abs(float(cost[1, 0]) - 20.0) < 1e-3


def test_soft_targets_prefer_the_query_closest_to_the_coverage():
    target = torch.tensor([[1.0, 1.0, 0.5, 0.5, 0.0, 0.0]])
    near = torch.tensor([[8.0, 8.0, 0.0, 0.0, -8.0, -8.0]])
    far = torch.tensor([[8.0, 8.0, 8.0, 8.0, 8.0, -8.0]])
    cost = match_cost(class_logits(0, 0), torch.cat([far, near]), torch.tensor([0]), target,
                      1, 1, 1)
    assert hungarian_match(cost)[0].tolist() == [1]


def test_more_segments_than_queries_match_as_many_as_there_are_queries():
    cost = match_cost(class_logits(0, 1), torch.randn(2, 8), torch.tensor([0, 1, 2]),
                      masks({0}, {1}, {2}), 1, 1, 1)
    rows, cols = hungarian_match(cost)
    assert len(rows) == 2 and len(set(rows.tolist())) == 2


def test_no_segments_no_matches():
    rows, cols = hungarian_match(torch.zeros(5, 0))
    assert rows.size == cols.size == 0


def test_assignment_is_optimal_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n, g = 5, int(rng.integers(1, 5))
        targets = torch.from_numpy((rng.random((g, 16)) > 0.5).astype(np.float32))
        cost = match_cost(torch.from_numpy(rng.normal(size=(n, C + 1)).astype(np.float32)),
                          torch.from_numpy(rng.normal(size=(n, 16)).astype(np.float32)) * 3,
                          torch.from_numpy(rng.integers(0, C, g)), targets, 2, 5, 5)
        rows, cols = hungarian_match(cost)
        assert sorted(cols.tolist()) == list(range(g)) and len(set(rows.tolist())) == g
        best = min(sum(float(cost[q, t]) for t, q in enumerate(perm))
                   for perm in itertools.permutations(range(n), g))
        assert abs(float(cost[rows, cols].sum()) - best) < 1e-5
