"""Similarities between stored objects and detections, and their one-to-one matching.

All functions are vectorised over the M x N pairs; no per-pair Python loops.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

_EPS = 1e-12
# OpenBLAS hands a matrix product to its thread pool once M * N * K exceeds 4 * 65536.
# On a shared CPU, waking those threads for a 100 x 100 x 128 product costs far more
# than the product (benchmarks/bench_tracking.py: ~1.3 ms median instead of ~0.15 ms),
# so products are computed in row blocks below that size, on the calling thread.
_SINGLE_THREAD_MNK = 4 * 65536


def pairwise_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, N) dot products of the rows of (M, K) and (N, K), on the calling thread."""
    rows = max(1, _SINGLE_THREAD_MNK // max(b.shape[0] * a.shape[1], 1))
    if rows >= len(a):
        return a @ b.T
    return np.concatenate([a[i:i + rows] @ b.T for i in range(0, len(a), rows)])


def cosine(stored: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """(M, N) cosine similarity cos(q_i, q^_j) between rows of (M, D) and (N, D)."""
    a = stored / np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), _EPS)
    b = detected / np.maximum(np.linalg.norm(detected, axis=1, keepdims=True), _EPS)
    return pairwise_dot(a, b)


def location(stored_boxes: np.ndarray, detected_boxes: np.ndarray,
             temperature: float) -> np.ndarray:
    """(M, N) location factor exp(-||b_i - b^_j||^2 / T) of eq. (5), boxes (x0, y0, x1, y1)
    normalised by the image size."""
    squared = ((stored_boxes ** 2).sum(1)[:, None] + (detected_boxes ** 2).sum(1)[None, :]
               - 2.0 * pairwise_dot(stored_boxes, detected_boxes))
    return np.exp(-np.maximum(squared, 0.0) / temperature)


def mask_iou(previous_map: np.ndarray, previous_segments: np.ndarray,
             current_map: np.ndarray, current_segments: np.ndarray) -> np.ndarray:
    """(P, C) mask IoU between the listed segments of two segment maps (-1 = void).

    One joint histogram of the two maps gives every intersection and area at once.
    """
    p, c = len(previous_segments), len(current_segments)
    if p == 0 or c == 0 or previous_map.shape != current_map.shape:
        return np.zeros((p, c))
    height = max(int(previous_map.max()), int(previous_segments.max())) + 2
    width = max(int(current_map.max()), int(current_segments.max())) + 2
    joint = (previous_map + 1) * width + (current_map + 1)
    counts = np.bincount(joint.ravel(), minlength=height * width).reshape(height, width)
    rows, cols = previous_segments + 1, current_segments + 1
    inter = counts[np.ix_(rows, cols)]
    union = counts.sum(1)[rows][:, None] + counts.sum(0)[cols][None, :] - inter
    return inter / np.maximum(union, 1)


def match(similarity: np.ndarray, admissible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matches (rows, cols) maximising the total similarity of admissible pairs.

    Inadmissible pairs (another class, or similarity not above the threshold) cannot
    be matched. They are excluded before the Hungarian algorithm rather than filtered
    after it, so a pair that would be rejected anyway never displaces an admissible
    one; on the admissible pairs the result is the maximum-weight matching, which is
    what Hungarian matching on S followed by the alpha filter aims at (seed 002,
    section 3.2). Admissible pairs must have a positive similarity (thresholds are
    >= 0). Only rows and columns with an admissible pair enter the solver.
    """
    weights = np.where(admissible, similarity, 0.0)
    rows = np.flatnonzero(admissible.any(axis=1))
    cols = np.flatnonzero(admissible.any(axis=0))
    if len(rows) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(rows) < len(weights) or len(cols) < weights.shape[1]:
        weights = weights[np.ix_(rows, cols)]
    r, c = linear_sum_assignment(weights, maximize=True)
    keep = weights[r, c] > 0.0
    return rows[r[keep]], cols[c[keep]]
