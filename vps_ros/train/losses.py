"""Training losses of the segmenter.

Per prediction (the final one and, with deep supervision, every k-means round as in
kMaX-DeepLab, each at its own resolution), after Hungarian matching: classification cross-entropy (unmatched
queries learn "no object"), mask BCE + dice on matched queries, and kMaX's pixel-wise
mask-id cross-entropy over queries (it trains the argmax that the k-means cross-
attention assigns pixels with). Once per batch: the auxiliary semantic head, and the
association loss of Video K-Net (seed 004, eqs. 1 and 2) between the matched thing
queries of the two frames of every pair.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .batch import Target
from .config import LossConfig
from .frames import NO_TRACK
from .matcher import hungarian_match, match_cost

# The matching costs of a prediction are measured on at most this many valid pixels,
# evenly spread (Mask2Former samples points for the same reason).
MATCH_POINTS = 4096


@dataclass
class Match:
    queries: torch.Tensor  # (M,) int64 query index of every matched target
    targets: torch.Tensor  # (M,) int64 target index, 0..G-1 in order


class Criterion:
    def __init__(self, config: LossConfig, num_classes: int,
                 class_weights: list[float] | None = None) -> None:
        """``class_weights`` (one per class, default 1) weight each class in the
        classification cross-entropy and each matched segment's mask losses by its
        class (``loss.class_weights``: rare, small classes count more)."""
        self.config = config
        self.num_classes = num_classes
        self.class_weights = torch.tensor(class_weights or [1.0] * num_classes)

    def __call__(self, outputs: dict, targets: list[Target]
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and its parts (summed over predictions) for logging."""
        config = self.config
        predictions = [(outputs["class_logits"], outputs["mask_logits"])]
        if config.deep_supervision:
            predictions += [(r["class_logits"], r["mask_logits"]) for r in outputs["rounds"]]
        parts: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros(()))
        final_matches: list[Match] = []
        pooled: dict[tuple[int, int], list[Target]] = {}
        for k, (class_logits, mask_logits) in enumerate(predictions):
            size = tuple(mask_logits.shape[-2:])
            if size not in pooled:
                pooled[size] = [t.pooled(size) for t in targets]
            matches = self.match(class_logits, mask_logits, pooled[size])
            if k == 0:
                final_matches = matches
            for name, value in self.set_losses(class_logits, mask_logits, pooled[size],
                                               matches).items():
                parts[name] = parts[name] + value
        if "semantic_logits" in outputs:
            size = tuple(outputs["semantic_logits"].shape[-2:])
            parts["semantic"] = semantic_loss(outputs["semantic_logits"],
                                              pooled.get(size) or [t.pooled(size) for t in targets])
        parts["track"], parts["track_aux"] = association_loss(
            outputs["embeddings"], targets, final_matches, config.track_temperature)
        weights = {"class": config.class_weight, "bce": config.bce_weight,
                   "dice": config.dice_weight, "mask_id": config.mask_id_weight,
                   "semantic": config.semantic_weight, "track": config.track_weight,
                   "track_aux": config.track_aux_weight}
        total = sum(weights[name] * value for name, value in parts.items())
        return total, {name: float(value.detach()) for name, value in parts.items()}

    def match(self, class_logits: torch.Tensor, mask_logits: torch.Tensor,
              targets: list[Target]) -> list[Match]:
        matches = []
        for i, target in enumerate(targets):
            points = torch.nonzero(target.valid.flatten()).flatten()
            if len(points) > MATCH_POINTS:  # an even subset is enough to rank the costs
                points = points[::math.ceil(len(points) / MATCH_POINTS)]
            cost = match_cost(class_logits[i], mask_logits[i].flatten(1)[:, points],
                              target.classes, target.masks.flatten(1)[:, points],
                              self.config.class_weight, self.config.bce_weight,
                              self.config.dice_weight)
            rows, cols = hungarian_match(cost)
            device = class_logits.device
            matches.append(Match(torch.from_numpy(rows).to(device),
                                 torch.from_numpy(cols).to(device)))
        return matches

    def set_losses(self, class_logits: torch.Tensor, mask_logits: torch.Tensor,
                   targets: list[Target], matches: list[Match]) -> dict[str, torch.Tensor]:
        b, n = class_logits.shape[:2]
        # Classification: matched queries learn their segment's class, others "no object".
        target_classes = torch.full((b, n), self.num_classes, dtype=torch.long,
                                    device=class_logits.device)
        for i, (target, match) in enumerate(zip(targets, matches)):
            target_classes[i, match.queries] = target.classes[match.targets]
        weight = torch.ones(self.num_classes + 1, device=class_logits.device)
        weight[:-1] = self.class_weights.to(class_logits.device)
        weight[-1] = self.config.no_object_weight
        class_loss = F.cross_entropy(class_logits.float().flatten(0, 1), target_classes.flatten(),
                                     weight)
        # Masks of matched queries, over valid pixels, averaged over all matched segments.
        logits = torch.cat([mask_logits[i, m.queries] for i, m in enumerate(matches)])
        masks = torch.cat([t.masks[m.targets] for t, m in zip(targets, matches)])
        valid = torch.cat([t.valid.expand(len(m.targets), -1, -1)
                           for t, m in zip(targets, matches)])
        segment_classes = torch.cat([t.classes[m.targets] for t, m in zip(targets, matches)])
        bce, dice = mask_losses(logits.float(), masks, valid,
                                self.class_weights.to(logits.device)[segment_classes])
        # Mask-id cross-entropy: every valid pixel should be won by its segment's query.
        pixel_query = torch.stack([_pixel_queries(t, m, n) for t, m in zip(targets, matches)])
        mask_id = (F.cross_entropy(mask_logits.float(), pixel_query, ignore_index=-1)
                   if bool((pixel_query >= 0).any()) else mask_logits.sum() * 0)
        return {"class": class_loss, "bce": bce, "dice": dice, "mask_id": mask_id}


def mask_losses(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor,
                mask_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over masks of the per-mask BCE (mean over valid pixels) and dice loss, each
    mask's losses multiplied by its ``mask_weights`` entry (default 1)."""
    if len(logits) == 0:
        zero = logits.sum() * 0
        return zero, zero
    weight = valid.flatten(1).float()
    logits, targets = logits.flatten(1), targets.flatten(1)
    pixels = weight.sum(-1).clamp(min=1)
    bce = (F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * weight
           ).sum(-1) / pixels
    probs = logits.sigmoid() * weight
    targets = targets * weight
    dice = 1 - (2 * (probs * targets).sum(-1) + 1) / (probs.sum(-1) + targets.sum(-1) + 1)
    if mask_weights is not None:
        bce, dice = bce * mask_weights, dice * mask_weights
    return bce.mean(), dice.mean()


def _pixel_queries(target: Target, match: Match, num_queries: int) -> torch.Tensor:
    """(h, w) query that should win each pixel, -1 where invalid or unmatched."""
    query_of_segment = torch.full((len(target.classes) + 1,), -1, dtype=torch.long,
                                  device=target.labels.device)
    query_of_segment[match.targets] = match.queries
    return query_of_segment[target.labels]  # label -1 reads the last entry, -1


def semantic_loss(logits: torch.Tensor, targets: list[Target]) -> torch.Tensor:
    """Cross-entropy of the auxiliary semantic head against each cell's majority class."""
    labels = torch.stack([torch.where(t.labels >= 0, t.classes[t.labels.clamp(min=0)]
                                      if len(t.classes) else t.labels, -1) for t in targets])
    if not bool((labels >= 0).any()):
        return logits.sum() * 0
    return F.cross_entropy(logits.float(), labels, ignore_index=-1)


def association_loss(embeddings: torch.Tensor, targets: list[Target], matches: list[Match],
                     temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Seed 004 eq. 1 (contrastive, on L2-normalised embeddings / temperature) and eq. 2
    (squared error of the cosine against 1 for the same track, 0 otherwise), between the
    matched thing queries of frames 2i and 2i+1, in both directions."""
    contrastive, auxiliary = [], []
    for a in range(0, len(targets) - 1, 2):
        emb_a, tracks_a = _thing_embeddings(embeddings[a], targets[a], matches[a])
        emb_b, tracks_b = _thing_embeddings(embeddings[a + 1], targets[a + 1], matches[a + 1])
        if len(tracks_a) == 0 or len(tracks_b) == 0:
            continue
        cosine = emb_a @ emb_b.T
        positive = tracks_a[:, None] == tracks_b[None, :]
        auxiliary.append(((cosine - positive.float()) ** 2).mean())
        for sim, pos in ((cosine, positive), (cosine.T, positive.T)):
            if bool(pos.any()):
                contrastive.append(_multi_positive_nce(sim / temperature, pos))
    zero = embeddings.sum() * 0
    return (torch.stack(contrastive).mean() if contrastive else zero,
            torch.stack(auxiliary).mean() if auxiliary else zero)


def _thing_embeddings(embeddings: torch.Tensor, target: Target, match: Match
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    tracks = target.tracks[match.targets]
    things = tracks != NO_TRACK
    return F.normalize(embeddings[match.queries[things]].float(), dim=-1), tracks[things]


def _multi_positive_nce(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Mean over positive pairs (v, k+) of -log(e^{v.k+} / (e^{v.k+} + sum_k- e^{v.k-}))."""
    # A large finite stand-in for -inf: rows without negatives then add ~0 and keep
    # finite gradients (logsumexp over only -inf has a NaN gradient).
    negatives = logits.masked_fill(positive, -1e4).logsumexp(dim=1, keepdim=True)
    per_pair = torch.logaddexp(logits, negatives) - logits
    return per_pair[positive].mean()
