"""COCO panoptic image files (``panoptic_val2017.json`` + a PNG folder), read as
panopticapi's ``pq_compute`` reads them, one image pair at a time.

Ground truth is taken as written: its JSON gives every segment's category, ``iscrowd``
and ``area``; ids in its PNG that its JSON lacks are left out of the matching (their
pixels still count in the predictions' areas), segments of its JSON absent from its
PNG are still segments. Predictions are checked as panopticapi checks them (every
non-zero id of the PNG in the JSON, every JSON id in the PNG, every category one of
the ground truth's); their areas are their pixel counts and ``iscrowd`` is ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from .files import read_json
from .segment_ids import SegmentLookup, ids, read_id_words, runs

VOID = 0


@dataclass(frozen=True)
class ImageOverlaps:
    """One image pair as pixel counts of (ground-truth segment, predicted segment).

    Ground-truth rows: the JSON's segments in JSON order, then void (id 0, unless the
    JSON lists 0), then one row for every PNG id the JSON lacks. Predicted rows: the
    JSON's segments, then void. Category -1: none.
    """

    image_id: Any
    gt_category: np.ndarray   # int64
    gt_crowd: np.ndarray      # bool, iscrowd == 1
    gt_void: np.ndarray       # bool
    gt_area: np.ndarray       # float64 (the JSON's area)
    pred_category: np.ndarray  # int64
    pred_area: np.ndarray     # int64, pixels
    g: np.ndarray             # int64 rows of the pairs
    p: np.ndarray
    count: np.ndarray


def _key(entry: Any, key: str, where: str) -> Any:
    try:
        return entry[key]
    except (KeyError, TypeError):
        raise DataError(f"{where}: missing {key!r}") from None


class CocoPanopticPairs:
    """The ground truth's images, each with its prediction (matched by ``image_id``)."""

    def __init__(self, gt_json: Path, gt_folder: Path, pred_json: Path, pred_folder: Path
                 ) -> None:
        gt, pred = read_json(gt_json, "ground-truth JSON"), read_json(pred_json, "prediction JSON")
        for folder, what in ((gt_folder, "ground truth"), (pred_folder, "predictions")):
            if not Path(folder).is_dir():
                raise DataError(f"{folder}: folder with {what} segmentations not found")
        self.gt_folder, self.pred_folder = Path(gt_folder), Path(pred_folder)
        self.categories = [dict(c) for c in _key(gt, "categories", str(gt_json))]
        for c in self.categories:
            _key(c, "id", f"{gt_json}: category {c!r}")
            _key(c, "isthing", f"{gt_json}: category {c!r}")
        self._known = {c["id"] for c in self.categories}
        predicted = {_key(a, "image_id", f"{pred_json}: annotation"): a
                     for a in _key(pred, "annotations", str(pred_json))}
        self.pairs = []
        for ann in _key(gt, "annotations", str(gt_json)):
            image_id = _key(ann, "image_id", f"{gt_json}: annotation")
            if image_id not in predicted:
                raise DataError(f"{pred_json}: no prediction for the image with id {image_id!r}")
            self.pairs.append((ann, predicted[image_id]))

    def __len__(self) -> int:
        return len(self.pairs)

    def overlaps(self, k: int) -> ImageOverlaps:
        """Read pair ``k``'s PNGs; DataError naming the image (and segment) where
        panopticapi would refuse the files."""
        gt_ann, pred_ann = self.pairs[k]
        image = gt_ann["image_id"]
        where = f"image {image!r}"
        gt_map = read_id_words(self.gt_folder / _key(gt_ann, "file_name", where), "panoptic PNG")
        pred_map = read_id_words(self.pred_folder / _key(pred_ann, "file_name", where),
                                 "panoptic PNG")
        if gt_map.shape != pred_map.shape:
            raise DataError(f"{where}: prediction is {pred_map.shape[1]}x{pred_map.shape[0]} "
                            f"pixels but ground truth is {gt_map.shape[1]}x{gt_map.shape[0]}")
        gt_segs, (gt_cats, gt_crowds, gt_areas) = _segments(
            gt_ann, where, ("category_id", "iscrowd", "area"), "ground-truth segment")
        pred_segs, (pred_cats,) = _segments(pred_ann, where, ("category_id",), "segment")

        starts, lengths = runs(gt_map, pred_map)
        gt_ids = list(gt_segs) + ([] if VOID in gt_segs else [VOID])
        g, _ = SegmentLookup(_lookup_ids(gt_ids)).rows(ids(gt_map.ravel().take(starts)))
        pred_ids = list(pred_segs) + ([] if VOID in pred_segs else [VOID])
        p, stray = SegmentLookup(_lookup_ids(pred_ids)).rows(ids(pred_map.ravel().take(starts)))
        if stray is not None:
            raise DataError(f"{where}: predicted segment {int(stray[0])} is in the PNG but not "
                            f"in the JSON")
        n_pred = len(pred_ids)
        # float64 weights: exact for counts below 2^53
        joint = np.bincount(g * n_pred + p, weights=lengths,
                            minlength=(len(gt_ids) + 1) * n_pred).astype(np.int64)
        cells = np.flatnonzero(joint)
        pred_area = joint.reshape(-1, n_pred).sum(axis=0)
        for row, (sid, category) in enumerate(zip(pred_segs, pred_cats)):
            if category not in self._known and pred_area[row]:
                raise DataError(f"{where}: predicted segment {sid} has unknown category_id "
                                f"{category!r}")
        absent = np.flatnonzero(pred_area[:len(pred_segs)] == 0)
        if len(absent):
            raise DataError(f"{where}: predicted segment {list(pred_segs)[absent[0]]} is in the "
                            f"JSON but not in the PNG")

        n_extra = len(gt_ids) - len(gt_segs)
        gt_category = np.array(gt_cats + [-1] * (n_extra + 1), np.int64)
        gt_crowd = np.array([c == 1 for c in gt_crowds] + [False] * (n_extra + 1))
        gt_void = np.array([sid == VOID for sid in gt_ids] + [False])
        gt_area = np.array([float(a) for a in gt_areas] + [0.0] * (n_extra + 1))
        pred_category = np.array(pred_cats + [-1] * (n_pred - len(pred_segs)), np.int64)
        g, p = np.divmod(cells, n_pred)
        return ImageOverlaps(image, gt_category, gt_crowd, gt_void, gt_area, pred_category,
                             pred_area, g, p, joint[cells])


def _segments(ann: dict, where: str, keys: tuple[str, ...], what: str
              ) -> tuple[dict[Any, dict], list[list]]:
    """``segments_info`` by id (a repeated id keeps its last entry, as panopticapi) and
    the values of ``keys`` of those segments, one list per key, in their order.

    Read in one pass over the list without a check per field: a segment that lacks one
    is looked for only when the pass fails, to name it."""
    info = _key(ann, "segments_info", where)
    try:
        segments = {seg["id"]: seg for seg in info}
        return segments, [[seg[key] for seg in segments.values()] for key in keys]
    except (KeyError, TypeError):
        for seg in info:
            sid = _key(seg, "id", f"{where}, segment {seg!r}")
            for key in keys:
                _key(seg, key, f"{where}, {what} {sid}")
        raise DataError(f"{where}: segments_info is not a list of segments with "
                        f"hashable ids") from None


def _lookup_ids(ids: list) -> np.ndarray:
    """The ids for :class:`SegmentLookup`; an id no PNG colour can hold (not an int in
    0..256^3-1) gets a stand-in above that range, so it matches no pixel."""
    colour = [isinstance(i, int) and 0 <= i < 256 ** 3 for i in ids]
    return np.array([i if ok else 256 ** 3 + k for k, (i, ok) in enumerate(zip(ids, colour))],
                    np.int64)
