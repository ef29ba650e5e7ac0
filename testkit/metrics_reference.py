"""Plain VPQ and STQ, written straight from the definitions, for checking the metric core.

Independent of ``vps_ros.metrics``: VPQ stacks each window's frames and runs one
``np.unique`` over it, then walks the tubes in Python; STQ runs one ``np.unique`` per
frame and keeps Python dictionaries per sequence. Slow on purpose: clarity first.

``sequences`` is a list of sequences, each a list of ``(gt, pred)`` panoptic maps
(``class * divisor + instance``); ``is_thing[c]`` for classes ``0..C-1``; ids of class
``void_id`` are void.
"""
from collections import Counter, defaultdict

import numpy as np

OFFSET = 1 << 31


def vpq_reference(sequences, is_thing, void_id, divisor, windows):
    """{window size: {"per_class": {c: [iou_sum, tp, fp, fn]}, "VPQ": ..., "things": ...,
    "stuff": ...}}, means over classes with any TP/FP/FN (None if there is none)."""
    out = {}
    for n in windows:
        stats = defaultdict(lambda: [0.0, 0, 0, 0])
        for frames in sequences:
            for start in range(len(frames) - n + 1):
                window = frames[start:start + n]
                gt = np.stack([g for g, _ in window]).astype(np.int64)
                pred = np.stack([p for _, p in window]).astype(np.int64)
                _match_window(gt, pred, is_thing, void_id, divisor, stats)
        out[n] = {"per_class": dict(stats)}
        for group, keep in (("VPQ", lambda c: True), ("things", lambda c: is_thing[c]),
                            ("stuff", lambda c: not is_thing[c])):
            values = [iou / (tp + fp / 2 + fn / 2) for c, (iou, tp, fp, fn) in stats.items()
                      if keep(c) and tp + fp + fn > 0]
            out[n][group] = sum(values) / len(values) if values else None
    return out


def _match_window(gt, pred, is_thing, void_id, divisor, stats):
    keys, counts = np.unique(gt * OFFSET + pred, return_counts=True)
    inter = {(int(k) // OFFSET, int(k) % OFFSET): int(c) for k, c in zip(keys, counts)}
    gt_area, pred_area = Counter(), Counter()
    for (g, p), c in inter.items():
        gt_area[g] += c
        pred_area[p] += c

    def cls(i):
        return i // divisor

    def void(i):
        return cls(i) == void_id

    def crowd(i):
        return not void(i) and is_thing[cls(i)] and i % divisor == 0

    on_void = Counter()
    for (g, p), c in inter.items():
        if void(g):
            on_void[p] += c
    gt_matched, pred_matched = set(), set()
    for (g, p), c in inter.items():
        if void(g) or void(p) or crowd(g) or cls(g) != cls(p):
            continue
        iou = c / (gt_area[g] + pred_area[p] - c - on_void[p])
        if iou > 0.5:
            stats[cls(g)][0] += iou
            stats[cls(g)][1] += 1
            gt_matched.add(g)
            pred_matched.add(p)
    for g in gt_area:
        if g not in gt_matched and not void(g) and not crowd(g):
            stats[cls(g)][3] += 1
    for p in pred_area:
        if p in pred_matched or void(p):
            continue
        crowd_id = cls(p) * divisor
        ignored = on_void[p] + (inter.get((crowd_id, p), 0) if is_thing[cls(p)] else 0)
        if ignored / pred_area[p] > 0.5:
            continue
        stats[cls(p)][2] += 1


def stq_reference(sequences, is_thing, void_id, divisor):
    """{"STQ", "AQ", "SQ", "iou": {class: IoU}} with None where undefined."""
    num_classes = len(is_thing)
    confusion = Counter()
    aq_sum, num_tracks = 0.0, 0
    for frames in sequences:
        gt_size, pred_size, tpa = Counter(), Counter(), Counter()
        for gt, pred in frames:
            keys, counts = np.unique(gt.astype(np.int64) * OFFSET + pred, return_counts=True)
            for k, c in zip(keys.tolist(), counts.tolist()):
                g, p = k // OFFSET, k % OFFSET
                gc, pc = g // divisor, p // divisor
                if gc != void_id:
                    confusion[gc, pc] += c
                g_thing = gc != void_id and is_thing[gc]
                g_track = g_thing and g % divisor != 0
                g_crowd = g_thing and g % divisor == 0
                p_track = pc != void_id and is_thing[pc]
                if g_track:
                    gt_size[g] += c
                if p_track and not g_crowd:
                    pred_size[p] += c
                if g_track and p_track:
                    tpa[g, p] += c
        for g, size_g in gt_size.items():
            inner = 0.0
            for (g2, p), t in tpa.items():
                if g2 == g:
                    inner += t * t / (pred_size[p] + size_g - t)
            aq_sum += inner / size_g
            num_tracks += 1
    iou = {}
    for c in range(num_classes):
        inter = confusion[c, c]
        gt_total = sum(v for (g, _), v in confusion.items() if g == c)
        pred_total = sum(v for (_, p), v in confusion.items() if p == c)
        union = gt_total + pred_total - inter
        if union > 0:
            iou[c] = inter / union
    sq = sum(iou.values()) / len(iou) if iou else None
    aq = aq_sum / num_tracks if num_tracks else None
    stq = None if aq is None or sq is None else (aq * sq) ** 0.5
    return {"STQ": stq, "AQ": aq, "SQ": sq, "iou": iou}
