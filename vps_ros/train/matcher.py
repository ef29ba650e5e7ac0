"""Bipartite matching of predicted queries to ground-truth segments (DETR, Mask2Former).

The cost of giving query i segment j is

    w_cls * (-p_i(c_j)) + w_bce * BCE(m_i, t_j) + w_dice * Dice(m_i, t_j)

over the valid pixels, and the assignment of least total cost is found with the
Hungarian algorithm (scipy ``linear_sum_assignment``).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment


@torch.no_grad()
def match_cost(class_logits: torch.Tensor, mask_logits: torch.Tensor,
               target_classes: torch.Tensor, target_masks: torch.Tensor,
               class_weight: float, bce_weight: float, dice_weight: float) -> torch.Tensor:
    """(N, G) cost. class_logits (N, C+1); mask_logits (N, P) and target_masks (G, P)
    over the same P valid pixels (targets may be soft, in [0, 1])."""
    logits = mask_logits.float()
    targets = target_masks.float()
    num_pixels = max(logits.shape[1], 1)
    cost_class = -class_logits.float().softmax(-1)[:, target_classes]
    # BCE of every query against every target as two matrix products.
    cost_bce = (F.softplus(-logits) @ targets.T + F.softplus(logits) @ (1 - targets).T) / num_pixels
    probs = logits.sigmoid()
    numerator = 2 * probs @ targets.T
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    cost_dice = 1 - (numerator + 1) / (denominator + 1)
    return class_weight * cost_class + bce_weight * cost_bce + dice_weight * cost_dice


def hungarian_match(cost: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(query indices, target indices) of the least-cost assignment, in target order."""
    if cost.shape[1] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    order = np.argsort(cols)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)
