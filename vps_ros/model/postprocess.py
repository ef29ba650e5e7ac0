"""From query predictions to non-overlapping segments (:class:`FrameSegments`).

Mask-wise merge (Panoptic FPN, kMaX-DeepLab inference): queries whose best class
(excluding "no object") is confident enough are visited in order of decreasing score;
each claims the pixels of its binarised mask that no earlier segment claimed, and is
dropped if too little of its mask is left (overlap threshold) or if what is left is
too small (minimum areas). Stuff segments of one class are merged into one segment.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..types import FrameSegments
from .config import PostprocessConfig


def merge_masks(class_logits: torch.Tensor, mask_logits: torch.Tensor,
                embeddings: torch.Tensor, is_thing: np.ndarray, size: tuple[int, int],
                config: PostprocessConfig) -> FrameSegments:
    """Segments of one image.

    class_logits (N, C + 1), mask_logits (N, h, w) at any resolution (bilinearly
    resized to ``size`` = (height, width)), embeddings (N, E); ``is_thing`` is the class
    table's bool lookup. The segment map has shape ``size``.
    """
    probs = class_logits.float().softmax(-1)[:, :-1]
    scores, labels = probs.max(-1)
    candidates = torch.nonzero(scores >= config.class_threshold).flatten()
    candidates = candidates[scores[candidates].argsort(descending=True, stable=True)]
    segment_map = torch.full(size, -1, dtype=torch.int32, device=mask_logits.device)
    kept: list[int] = []
    if len(candidates):
        masks = F.interpolate(mask_logits[candidates].unsqueeze(0).float(), size=size,
                              mode="bilinear", align_corners=False)[0]
        kept = _paste(masks.sigmoid() > config.mask_threshold, candidates.tolist(),
                      labels.tolist(), is_thing, segment_map, config)
    index = torch.tensor(kept, dtype=torch.long, device=class_logits.device)
    return segments_from_map(segment_map.cpu().numpy(), labels[index].cpu().numpy(),
                             scores[index].cpu().numpy(), is_thing,
                             F.normalize(embeddings[index].float(), dim=-1).cpu().numpy())


def _paste(masks: torch.Tensor, queries: list[int], labels: list[int], is_thing: np.ndarray,
           segment_map: torch.Tensor, config: PostprocessConfig) -> list[int]:
    """Fill ``segment_map`` in score order; returns the query of every segment."""
    occupied = torch.zeros_like(masks[0])
    kept: list[int] = []
    stuff_segment: dict[int, int] = {}
    for mask, query in zip(masks, queries):
        area = int(mask.sum())
        if area == 0:
            continue
        free = mask & ~occupied
        free_area = int(free.sum())
        label = labels[query]
        thing = bool(is_thing[label])
        if free_area < config.overlap_threshold * area or free_area == 0:
            continue
        if free_area < (config.min_area_thing if thing else config.min_area_stuff):
            continue
        if not thing and config.merge_stuff and label in stuff_segment:
            segment = stuff_segment[label]
        elif len(kept) < config.max_segments:
            segment = len(kept)
            kept.append(query)
            if not thing:
                stuff_segment[label] = segment
        else:
            continue
        segment_map[free] = segment
        occupied |= free
    return kept


def segments_from_map(segment_map: np.ndarray, class_ids: np.ndarray, scores: np.ndarray,
                      is_thing: np.ndarray, embeddings: np.ndarray) -> FrameSegments:
    """FrameSegments of a segment map (-1 = void) with per-segment attributes.

    Areas and boxes are measured on the map; segments without pixels are dropped and
    the others renumbered in order.
    """
    n = len(class_ids)
    areas = np.bincount(segment_map.ravel() + 1, minlength=n + 1)[1:].astype(np.int64)
    present = np.flatnonzero(areas > 0)
    if len(present) < n:
        lut = np.full(n + 1, -1, np.int32)
        lut[present] = np.arange(len(present), dtype=np.int32)
        segment_map = lut[segment_map]  # index -1 reads the last entry, -1
        class_ids, scores, embeddings, areas = (class_ids[present], scores[present],
                                                embeddings[present], areas[present])
    boxes = np.zeros((len(present), 4), np.float32)
    for i, found in enumerate(ndimage.find_objects(segment_map + 1, len(present))):
        if found is not None:
            boxes[i] = (found[1].start, found[0].start, found[1].stop, found[0].stop)
    class_ids = np.asarray(class_ids, np.int32)
    return FrameSegments(segment_map.astype(np.int32, copy=False), class_ids,
                         np.asarray(scores, np.float32), is_thing[class_ids].astype(bool),
                         boxes, areas, np.asarray(embeddings, np.float32))


def resize_segments(segments: FrameSegments, size: tuple[int, int],
                    is_thing: np.ndarray) -> FrameSegments:
    """The same segments on a map of another ``size`` (nearest neighbour); segments
    that vanish when shrinking are dropped."""
    if segments.image_size == tuple(size):
        return segments
    resized = cv2.resize(segments.segment_map, (size[1], size[0]),
                         interpolation=cv2.INTER_NEAREST)
    return segments_from_map(resized, segments.class_ids, segments.scores, is_thing,
                             segments.embeddings)
