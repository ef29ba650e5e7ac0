"""The metric core's formulas on many summed statistics at once (a bootstrap's resamples).

Each function takes statistics with a leading resample axis ``R`` (the sums of
:class:`~vps_ros.metrics.vpq.VpqStats` / :class:`~vps_ros.metrics.stq.StqStats` over the
drives or frame blocks of one resample) and returns one value per resample, NaN where
:mod:`~vps_ros.metrics.summary` reports ``None``. The formulas are the ones of
``summary.py`` and ``stq.py`` (seed 001 eq. 1 for VPQ; Weber et al. 2021 for STQ); a test
checks that a single resample of every drive gives ``MetricStats.result`` exactly.
"""
from __future__ import annotations

import numpy as np


def class_pq(iou: np.ndarray, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """PQ per (resample, window, class): ``IoU / (TP + FP/2 + FN/2)``, NaN for classes
    without TP, FP or FN (as ``summary.panoptic_qualities``)."""
    denominator = tp + 0.5 * fp + 0.5 * fn
    return np.where(denominator > 0, iou / np.maximum(denominator, 0.5), np.nan)


def _class_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the classes in ``mask`` (last axis) that are defined; NaN if none."""
    chosen = values[..., mask]
    defined = ~np.isnan(chosen)
    count = defined.sum(axis=-1)
    total = np.where(defined, chosen, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def vpq(iou: np.ndarray, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray,
        is_thing: np.ndarray, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    """``VPQ``, ``VPQ_things``, ``VPQ_stuff`` and ``VPQ_<n>`` per window size (R,), and
    ``per_class`` (R, C): the class's VPQ, the mean over window sizes (NaN if any is)."""
    pq = class_pq(iou, tp, fp, fn)                       # (R, W, C)
    every = np.ones(pq.shape[-1], bool)
    out: dict[str, np.ndarray] = {}
    for suffix, mask in (("", every), ("_things", is_thing), ("_stuff", ~is_thing)):
        per_window = _class_mean(pq, mask)               # (R, W): NaN propagates to the mean
        out[f"VPQ{suffix}"] = per_window.mean(axis=-1)
        if not suffix:
            out.update({f"VPQ_{n}": per_window[:, row] for row, n in enumerate(windows)})
    out["per_class"] = pq.mean(axis=1)
    return out


def sq(confusion: np.ndarray) -> np.ndarray:
    """SQ (R,): mean IoU over the classes with a union, from (R, C+1, C+1) confusions
    (ground-truth rows, void last; void ground truth dropped)."""
    nc = confusion.shape[-1] - 1
    labelled = confusion[:, :nc].astype(np.float64)
    inter = np.diagonal(labelled, axis1=1, axis2=2)
    union = labelled.sum(axis=2) + labelled[:, :, :nc].sum(axis=1) - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return _class_mean(iou, np.ones(nc, bool))


def aq(aq_sum: np.ndarray, num_tracks: np.ndarray) -> np.ndarray:
    """AQ (R,): summed association quality over the number of ground-truth tracks."""
    return np.where(num_tracks > 0, aq_sum / np.maximum(num_tracks, 1), np.nan)


def track_aq_parts(gt_size: np.ndarray, pred_size: np.ndarray, overlap: np.ndarray,
                   pair_gt: np.ndarray, pair_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(AQ sum, number of tracks) per resample from summed track pixels: ``gt_size``
    (R, G), ``pred_size`` (R, P), ``overlap`` (R, K) of the pairs (``pair_gt[k]``,
    ``pair_pred[k]``) (the sum in ``StqStream.finish``: ``TPA^2 / ((|p|+|g|-TPA) |g|)``)."""
    size_g = gt_size[:, pair_gt]
    size_p = pred_size[:, pair_pred]
    present = overlap > 0
    union = np.where(present, size_p + size_g - overlap, 1.0)
    term = np.where(present, overlap * (overlap / union) / np.where(present, size_g, 1.0), 0.0)
    return term.sum(axis=1), (gt_size > 0).sum(axis=1)


def stq(aq_values: np.ndarray, sq_values: np.ndarray) -> np.ndarray:
    """STQ = sqrt(AQ * SQ)."""
    return np.sqrt(aq_values * sq_values)
