"""From query predictions to non-overlapping segments (:class:`FrameSegments`).

Mask-wise merge (Panoptic FPN, kMaX-DeepLab inference): queries whose best class
(excluding "no object") is confident enough are visited in order of decreasing score;
each claims the pixels of its binarised mask that no earlier segment claimed, and is
dropped if too little of its mask is left (overlap threshold) or if what is left is
too small (minimum areas). Stuff segments of one class are merged into one segment;
a thing segment's disconnected parts become segments of their own (one query may
cover several objects of a class, e.g. pedestrians on both sides of a street), or void
when they are too small.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..types import FrameSegments
from .config import PostprocessConfig

# Relative margin around the mask threshold within which an upsampled logit is computed
# exactly: a bilinear value is a convex combination of four logits, rounded a few ulps
# (~1e-7 relative) at most, so farther than this from the threshold its side is known.
MARGIN = 1e-4


def merge_masks(class_logits: torch.Tensor, mask_logits: torch.Tensor,
                embeddings: torch.Tensor, is_thing: np.ndarray, size: tuple[int, int],
                config: PostprocessConfig, queries: bool = False) -> FrameSegments:
    """Segments of one image.

    class_logits (N, C + 1), mask_logits (N, h, w) on the network's mask grid,
    embeddings (N, E); ``is_thing`` is the class table's bool lookup. The segment map
    has shape ``size`` = (height, width).

    Which queries become segments is decided on the mask grid (areas scaled to
    ``size``); the pixels of the kept ones are then assigned at ``size`` from their
    bilinearly resized logits, each pixel to the first kept query in score order whose
    mask holds it (:func:`paste`).

    With ``queries`` the segments carry the index of the query each came from
    (:attr:`FrameSegments.queries`): a thing's largest part keeps its query, the parts
    split off it get -1 (no query holds them alone).
    """
    # All torch work first, in few calls (each costs more than its arithmetic here):
    # every query's class probabilities and unit embedding (row by row, as for one).
    probs = class_logits.float().softmax(-1).cpu().numpy()[:, :-1]
    unit = F.normalize(embeddings.float(), dim=-1).cpu().numpy()
    labels = probs.argmax(-1)                  # the first of equal maxima, as torch's max
    scores = probs[np.arange(len(probs)), labels]
    candidates = np.flatnonzero(scores >= config.class_threshold)
    candidates = candidates[np.argsort(-scores[candidates], kind="stable")]
    grid = np.ascontiguousarray(mask_logits.float().cpu().numpy())
    threshold = _logit(config.mask_threshold)
    pixel_area = size[0] * size[1] / (grid.shape[-2] * grid.shape[-1])
    rows, segment_of_row, founders = _select(grid, candidates, threshold,
                                             labels[candidates].tolist(), is_thing,
                                             pixel_area, config)
    segment_map = paste(np.take(grid, candidates[rows], axis=0),
                        np.asarray(segment_of_row, np.int32), threshold, size)
    kept = candidates[founders]
    segment_map, origin, areas, boxes = split_parts(
        segment_map, is_thing[labels[kept]], config.min_area_thing, config.max_segments,
        config.split_things)
    query_of = np.append(kept, np.full(len(origin) - len(kept), -1))
    kept = kept[origin]
    return measured_segments(segment_map, areas, boxes, labels[kept], scores[kept], is_thing,
                             unit[kept], query_of.astype(np.int64) if queries else None)


def paste(logits: np.ndarray, segment_of_row: np.ndarray, threshold: float,
          size: tuple[int, int]) -> np.ndarray:
    """The (height, width) = ``size`` segment map of masks pasted in row order.

    ``logits`` (R, h, w) on the mask grid are resized bilinearly (align_corners=False)
    to ``size``; each pixel gets ``segment_of_row`` of the first row whose resized logit
    exceeds ``threshold``, -1 if none does.

    Resizing every row to ``size`` would cost most of the merge, yet a resized logit is
    a convex combination of the 3x3 mask-grid logits around its source cell: where all
    of them are clearly above (or all below) the threshold, its side is known without
    resizing. Only the (row, cell) pairs where the row may hold a pixel of the cell
    before the first row sure to hold it are resized, pixel by pixel, with the bilinear
    weights of an integer scale (:func:`_children`); a value within rounding of the
    threshold (a few in a frame at most) is taken from torch's own resize of its row.
    So the map equals the one of resizing every row with
    :func:`torch.nn.functional.interpolate` (tested against it) at a fraction of the work.
    """
    height, width = size
    lut = np.full(max(256, len(segment_of_row) + 1), -1, np.int32)
    lut[:len(segment_of_row)] = segment_of_row        # row R (none) and beyond -> void
    if len(logits) == 0:
        return np.full(size, -1, np.int32)
    count, h, w = logits.shape
    scale = height // h
    if (h * scale, w * scale) != (height, width) or count >= 255:
        # No integer scale (or too many rows for a uint8 index): resize every row.
        full = F.interpolate(torch.from_numpy(logits)[None], size=size, mode="bilinear",
                             align_corners=False)[0]
        return np.take(lut, _first_index(full.numpy() > threshold))
    margin = MARGIN * (1.0 + max(float(logits.max()), -float(logits.min())))
    sure = _neighbourhood(logits, threshold + margin, cv2.erode)     # all children hold
    maybe = _neighbourhood(logits, threshold - margin, cv2.dilate)   # some child may hold
    first_sure = _first_index(sure)
    first = (cv2.resize(first_sure, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
             if scale > 1 else first_sure.copy())
    later = np.greater(first_sure, np.arange(count, dtype=np.uint8)[:, None, None])
    doubt = np.flatnonzero(np.logical_and(later, maybe, out=later))
    if len(doubt):
        rows, pixels = _holders(logits, doubt, threshold, margin * 1e-2, size, scale)
        np.minimum.at(first.reshape(-1), pixels, rows.astype(np.uint8))
    return cv2.LUT(first, lut[:256])


def _holders(logits: np.ndarray, doubt: np.ndarray, threshold: float, near: float,
             size: tuple[int, int], scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The (row, output pixel) pairs among the children of the flat (row, cell) indices
    ``doubt`` whose resized logit exceeds ``threshold``.

    A child's value is the bilinear blend of its cell and the neighbours towards it
    (clamped at the borders, where the resize clamps its source); it differs from
    torch's by rounding only, so where it is within ``near`` of the threshold torch's
    resize of that row decides. All children of all cells at once, in (scale, scale,
    cells) arrays (child (a, b) at offset (a, b) in its cell): the blends along x on
    the cell's own row are shared by the children of a column."""
    count, h, w = logits.shape
    width = size[1]
    rows, cell = np.divmod(doubt, h * w)
    cy, cx = np.divmod(cell, w)
    flat = logits.reshape(-1)
    step, weight = _children(scale)
    dy, fy = step[:, None, None], weight[:, None, None]      # per child row a
    dx, fx = step[None, :, None], weight[None, :, None]      # per child column b
    ys = np.minimum(np.maximum(cy + dy, 0), h - 1) * w
    xs = np.minimum(np.maximum(cx + dx, 0), w - 1)
    line = rows * (h * w)
    top = (1 - fx) * flat[doubt] + fx * flat[doubt - cx + xs]
    bottom = (1 - fx) * flat[line + cx + ys] + fx * flat[line + ys + xs]
    value = ((1 - fy) * top + fy * bottom).reshape(scale * scale, -1)
    offset = (np.arange(scale)[:, None] * width + np.arange(scale)).reshape(-1, 1)
    pixel = cy * (scale * width) + cx * scale + offset
    limit = np.float32(threshold)
    distance = np.abs(value - limit)
    if distance.min() <= near:
        close = distance <= near
        for row in np.unique(rows[close.any(0)]):
            exact = F.interpolate(torch.from_numpy(logits[row])[None, None], size=size,
                                  mode="bilinear", align_corners=False).reshape(-1)
            pick = close & (rows == row)
            value[pick] = exact.numpy()[pixel[pick]]
    hold = value > limit
    return np.broadcast_to(rows, hold.shape)[hold], pixel[hold]


@lru_cache(maxsize=8)
def _children(scale: int) -> tuple[np.ndarray, np.ndarray]:
    """For each child offset 0..scale-1 of a cell: the neighbour cell its bilinear
    source leans to (-1, 0, +1) and that neighbour's weight (align_corners=False: the
    child at offset a samples the grid at cell + (a + 0.5) / scale - 0.5)."""
    frac = (np.arange(scale) + 0.5) / scale - 0.5
    return np.sign(frac).astype(np.int64), np.abs(frac).astype(np.float32)


def _first_index(masks: np.ndarray) -> np.ndarray:
    """Index of the first set entry along the first axis (its length where none is)."""
    count = len(masks)
    first = np.full(masks.shape[1:], count, np.uint8 if count < 255 else np.int32)
    for index in range(count - 1, -1, -1):
        np.copyto(first, index, where=masks[index])
    return first


_KERNEL = np.ones((3, 3), np.uint8)


def _neighbourhood(logits: np.ndarray, level: float, morphology) -> np.ndarray:
    """Each cell's 3x3 neighbourhood of the (R, h, w) masks ``logits > level`` combined by
    ``morphology`` (cv2.erode: all set, cv2.dilate: any set), the border repeated as the
    bilinear resize clamps its source.

    One call for all masks: stacked as one image with a repeated row above and below
    each, so no cell's neighbourhood reaches into another mask."""
    count, h, w = logits.shape
    padded = np.empty((count, h + 2, w), bool)
    np.greater(logits, level, out=padded[:, 1:-1])
    padded[:, 0] = padded[:, 1]
    padded[:, -1] = padded[:, -2]
    out = morphology(padded.view(np.uint8).reshape(count * (h + 2), w), _KERNEL,
                     borderType=cv2.BORDER_REPLICATE)
    return out.reshape(count, h + 2, w)[:, 1:-1].view(bool)


def split_parts(segment_map: np.ndarray, thing: np.ndarray, min_area: int,
                max_segments: int, split: bool = True
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every thing segment's disconnected parts (8-connected) of at least ``min_area``
    pixels, but its largest, as new segments numbered after the existing ones (with
    ``split``; without, the map as it is), and every segment's area and box.

    Smaller parts become void: stray blobs, which would otherwise stretch the segment's
    box across the image (val PQ 68.3 against 67.9 when they stay). Returns the new map
    (``segment_map`` is changed in place where it is contiguous), per segment the segment
    it came from, the areas and the (x0, y0, x1, y1) boxes (:func:`boxes_of`'s).

    Everything is measured on the map's horizontal runs (:func:`_runs`): areas and boxes
    of the segments, and the parts as the connected components of the graph whose nodes
    are the runs of thing segments and whose edges join runs of one segment on adjacent
    rows that touch (8-connectivity); the pixels of the parts that change are rewritten
    run by run.
    """
    segment_map = np.ascontiguousarray(segment_map)
    n = len(thing)
    runs = _runs(segment_map, n)
    areas, boxes = _areas_and_boxes(runs, n)
    if split:
        runs = _Runs(*(values[thing[runs.labels]] for values in runs))
    if not split or not len(runs.labels):
        return segment_map, np.arange(n), areas, boxes
    count, part = _components(runs, *segment_map.shape)
    lengths = runs.x1 - runs.x0
    sizes = np.bincount(part, weights=lengths, minlength=count).astype(np.int64)
    index = np.arange(len(part))
    first_run, last_run = np.full(count, len(part)), np.zeros(count, np.int64)
    np.minimum.at(first_run, part, index)
    np.maximum.at(last_run, part, index)
    part_boxes = np.stack([np.full(count, segment_map.shape[1]), runs.rows[first_run],
                           np.zeros(count, np.int64), runs.rows[last_run] + 1], 1)
    np.minimum.at(part_boxes[:, 0], part, runs.x0)
    np.maximum.at(part_boxes[:, 2], part, runs.x1)
    segment = runs.labels[first_run].astype(np.int64)
    # Largest first; among equal sizes, the part met first in raster order (a segment's
    # runs are in raster order, so its part's first run holds its first pixel).
    start = runs.rows[first_run] * segment_map.shape[1] + runs.x0[first_run]
    order = np.lexsort((start, -sizes, segment))
    grouped = segment[order]
    spare = order[np.arange(count) - np.searchsorted(grouped, grouped) > 0]  # not largest
    small = sizes[spare] < min_area
    void, rest = spare[small], spare[~small]
    # Numbered in order while there is room (max_segments); the ones after stay.
    new = rest[:max(max_segments - n, 0)]
    segment_of_part = segment.copy()
    segment_of_part[void] = -1
    segment_of_part[new] = n + np.arange(len(new))
    stays = np.flatnonzero(segment_of_part == segment)
    touched = np.unique(segment)
    areas[touched] = np.bincount(segment[stays], weights=sizes[stays], minlength=n)[touched]
    corners = np.stack([np.full((n, 2), max(segment_map.shape)), np.zeros((n, 2), np.int64)], 1)
    np.minimum.at(corners[:, 0], segment[stays], part_boxes[stays, :2])
    np.maximum.at(corners[:, 1], segment[stays], part_boxes[stays, 2:])
    boxes[touched] = corners[touched].reshape(-1, 4)
    value = segment_of_part[part]
    changed = np.flatnonzero(value != runs.labels)
    if len(changed):
        lengths = lengths[changed]
        first_pixel = runs.rows[changed] * segment_map.shape[1] + runs.x0[changed]
        offsets = np.cumsum(lengths) - lengths
        pixels = np.repeat(first_pixel - offsets, lengths) + np.arange(lengths.sum())
        segment_map.reshape(-1)[pixels] = np.repeat(value[changed], lengths)
    origin = np.concatenate([np.arange(n), segment[new]])
    return (segment_map, origin, np.concatenate([areas, sizes[new]]),
            np.concatenate([boxes, part_boxes[new]]))


class _Runs(NamedTuple):
    """A segment map's horizontal runs (maximal spans of one segment within a row),
    ordered by segment, then in raster order: x0 and x1 (exclusive) on ``rows``."""
    labels: np.ndarray
    rows: np.ndarray
    x0: np.ndarray
    x1: np.ndarray


def _runs(segment_map: np.ndarray, n: int) -> _Runs:
    """The runs of segments 0..n-1 of a contiguous (height, width) map (void left out)."""
    width = segment_map.shape[1]
    flat = segment_map.reshape(-1)
    change = np.empty(flat.size, bool)
    change[:1] = True
    np.not_equal(flat[1:], flat[:-1], out=change[1:])
    change[::width] = True                                  # no run crosses a row end
    starts = np.flatnonzero(change)
    lengths = np.diff(starts, append=flat.size)
    labels = flat[starts]
    keep = np.flatnonzero((labels >= 0) & (labels < n))
    keep = keep[np.argsort(labels[keep], kind="stable")]
    rows, x0 = np.divmod(starts[keep], width)
    return _Runs(labels[keep], rows, x0, x0 + lengths[keep])


def _areas_and_boxes(runs: _Runs, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n,) int64 areas and (n, 4) int64 boxes (x0, y0, x1, y1; ends exclusive) of
    segments 0..n-1 from their runs; zeros for a segment without pixels."""
    areas = np.bincount(runs.labels, weights=runs.x1 - runs.x0, minlength=n).astype(np.int64)
    boxes = np.zeros((n, 4), np.int64)
    if len(runs.labels):
        first = np.flatnonzero(np.diff(runs.labels, prepend=-1))
        last = np.append(first[1:], len(runs.labels)) - 1
        boxes[runs.labels[first]] = np.stack(
            [np.minimum.reduceat(runs.x0, first), runs.rows[first],
             np.maximum.reduceat(runs.x1, first), runs.rows[last] + 1], 1)
    return areas, boxes


def _components(runs: _Runs, height: int, width: int) -> tuple[int, np.ndarray]:
    """The 8-connected parts of the segments as components of their runs: two runs of
    one segment on adjacent rows join where x0 <= the other's x1 both ways (their
    pixels touch at least diagonally). Returns the number of parts and each run's.

    The components by a vectorised union-find: a few hundred runs make scipy's
    csgraph cost more in checks and conversions than in the search (the merge ran 4%
    faster this way side by side)."""
    line = runs.labels.astype(np.int64) * (height + 1) + runs.rows   # a segment's row
    begin, end = line * (width + 1) + runs.x0, line * (width + 1) + runs.x1  # both sorted
    below = (line + 1) * (width + 1)
    lo = np.searchsorted(end, below + runs.x0, "left")      # first run below ending at x0+
    hi = np.searchsorted(begin, below + runs.x1, "right")   # past the last starting <= x1
    degree = np.maximum(hi - lo, 0)
    source = np.repeat(np.arange(len(line)), degree)
    target = np.repeat(lo - np.cumsum(degree) + degree, degree) + np.arange(degree.sum())
    # Union-find by hooking each edge's larger root onto its smaller, then full path
    # compression, until every edge joins one root.
    root = np.arange(len(line))
    while True:
        a, b = root[source], root[target]
        if np.array_equal(a, b):
            break
        low = np.minimum(a, b)
        np.minimum.at(root, a, low)
        np.minimum.at(root, b, low)
        while True:
            parent = root[root]
            if np.array_equal(parent, root):
                break
            root = parent
    roots, part = np.unique(root, return_inverse=True)
    count = len(roots)
    return count, part


def _select(grid: np.ndarray, candidates: np.ndarray, threshold: float, labels: list[int],
            is_thing: np.ndarray, pixel_area: float, config: PostprocessConfig
            ) -> tuple[list[int], list[int], list[int]]:
    """The mask-wise merge rules, in score order on the binary masks
    ``grid[candidates] > threshold`` of (N, h, w) mask logits.

    Returns the indices into ``candidates`` of the kept masks, the segment of each (stuff
    of one class merged into the segment of its best-scoring mask) and the index that
    founded each segment.
    """
    free = np.ones(grid.shape[-2:], bool)
    rows: list[int] = []
    segment_of_row: list[int] = []
    founders: list[int] = []
    stuff_segment: dict[int, int] = {}
    for row, (query, label) in enumerate(zip(candidates.tolist(), labels)):
        thing = bool(is_thing[label])
        min_area = config.min_area_thing if thing else config.min_area_stuff
        mask = grid[query] > threshold
        area = np.count_nonzero(mask)
        if area == 0 or area * pixel_area < min_area:      # free_area <= area
            continue
        free_area = np.count_nonzero(mask & free)
        if free_area == 0 or free_area < config.overlap_threshold * area:
            continue
        if free_area * pixel_area < min_area:
            continue
        if not thing and config.merge_stuff and label in stuff_segment:
            segment = stuff_segment[label]
        elif len(founders) < config.max_segments:
            segment = len(founders)
            founders.append(row)
            if not thing:
                stuff_segment[label] = segment
        else:
            continue
        rows.append(row)
        segment_of_row.append(segment)
        np.greater(free, mask, out=free)                     # free and not mask
    return rows, segment_of_row, founders


def _logit(p: float) -> float:
    """Mask probability threshold as a logit threshold (sigmoid(x) > p  <=>  x > logit p)."""
    if p <= 0.0:
        return float("-inf")
    if p >= 1.0:
        return float("inf")
    return float(np.log(p / (1.0 - p)))


def boxes_of(segment_map: np.ndarray, n: int) -> np.ndarray:
    """(n, 4) int64 boxes (x0, y0, x1, y1; ends exclusive) of segments 0..n-1 of a map
    (-1 = void); zeros for a segment without pixels."""
    return _areas_and_boxes(_runs(np.ascontiguousarray(segment_map), n), n)[1]


def segments_from_map(segment_map: np.ndarray, class_ids: np.ndarray, scores: np.ndarray,
                      is_thing: np.ndarray, embeddings: np.ndarray,
                      queries: np.ndarray | None = None) -> FrameSegments:
    """FrameSegments of a segment map (-1 = void) with per-segment attributes.

    Areas and boxes are measured on the map; segments without pixels are dropped and
    the others renumbered in order.
    """
    n = len(class_ids)
    areas, boxes = _areas_and_boxes(_runs(np.ascontiguousarray(segment_map), n), n)
    return measured_segments(segment_map, areas, boxes, class_ids, scores, is_thing,
                             embeddings, queries)


def measured_segments(segment_map: np.ndarray, areas: np.ndarray, boxes: np.ndarray,
                      class_ids: np.ndarray, scores: np.ndarray, is_thing: np.ndarray,
                      embeddings: np.ndarray, queries: np.ndarray | None = None
                      ) -> FrameSegments:
    """FrameSegments of a segment map whose segments' ``areas`` and ``boxes`` are known;
    segments without pixels are dropped and the others renumbered in order."""
    present = np.flatnonzero(areas > 0)
    if len(present) < len(areas):
        lut = np.full(len(areas) + 1, -1, np.int32)
        lut[present] = np.arange(len(present), dtype=np.int32)
        segment_map = lut[segment_map]  # index -1 reads the last entry, -1
        class_ids, scores, embeddings, areas, boxes = (
            class_ids[present], scores[present], embeddings[present], areas[present],
            boxes[present])
        queries = None if queries is None else queries[present]
    class_ids = np.asarray(class_ids, np.int32)
    return FrameSegments(segment_map.astype(np.int32, copy=False), class_ids,
                         np.asarray(scores, np.float32), is_thing[class_ids].astype(bool),
                         boxes.astype(np.float32), areas.astype(np.int64),
                         np.asarray(embeddings, np.float32), queries)
