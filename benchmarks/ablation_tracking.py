"""Occlusion ablation of the trackers (issue 6, seed 002 Tables 5 and 6): AQ, STQ and the
matching-space size M x N of IoU stitching, naive-MB and HiLA-MB on the same segments.

Every frame of the synthetic ``occlusion`` and ``test`` splits is segmented once by the
model; each tracker mode then runs over exactly those segments (only ``mode`` differs
from the default TrackerConfig), and its panoptic output is scored against the ground
truth with the package's metric core (STQ, AQ, SQ of Weber et al. 2021). Two kinds of
segments: ``model`` (the segmenter's, as the node gets them) and ``gt masks`` (the
ground-truth segments, each thing with the embedding of the model's segment that
overlaps it most), which separates association from segmentation quality. Everything is
deterministic for a given model, so each figure is computed once; the spread shown is
over sequences: per-sequence AQ (median, min..max) and, for each baseline, on how many
sequences HiLA-MB's AQ is higher / lower. Goal: HiLA-MB AQ above both baselines on the
occlusion split by at least 5 points.

``--diagnose`` adds, per kind of segments on the occlusion split, what helps explain the
result: how well the model's embeddings tell one track from another (the same track
across a gap of at least 8 frames against other tracks of its class), how often each
mode keeps a track's id across gaps of 1, 2..7 and >= 8 frames and how often it gives a
segment another track's id, the AQ a perfect
association of the segments would reach, AQ with the embeddings replaced (all equal:
location only; one per true track: perfect appearance), and AQ for a few settings of T,
alpha, lambda and tau around the defaults.

    python benchmarks/ablation_tracking.py [--model CKPT] [--sequences 10] [--frames 60]
        [--splits occlusion test] [--modes ...] [--segments model "gt masks"]
        [--cache DIR] [--diagnose]
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import os
import platform
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from scipy import ndimage

from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.errors import VpsRosError
from vps_ros.metrics import LabelSpace, MetricStats, SequenceEvaluator
from vps_ros.model import Segmenter
from vps_ros.panoptic import from_segments
from vps_ros.pipeline import DEFAULT_MODEL, PipelineConfig, load_segmenter
from vps_ros.resources import model_path
from vps_ros.tracking import MODES, MatchingSpace, TrackerConfig, make_tracker
from vps_ros.tracking.similarity import mask_iou
from vps_ros.types import FrameSegments

BASELINES = ("iou_stitch", "naive_mb")
GOAL_POINTS = 5.0
MIN_GAP = 8          # frames: a track re-seen after at least this many is a re-identification


@dataclasses.dataclass
class Sequence:
    """One sequence's segments and ground truth, frame by frame, shared by every tracker."""

    name: str
    segments: list[FrameSegments]
    ground_truth: list[np.ndarray]


@dataclasses.dataclass
class Score:
    """One tracker on one split: metric sums, per-sequence AQ, matching space."""

    stats: MetricStats | None = None
    sequence_aq: list[float] = dataclasses.field(default_factory=list)
    space: MatchingSpace = dataclasses.field(default_factory=MatchingSpace)

    def add(self, stats: MetricStats, space: MatchingSpace) -> None:
        if self.stats is None:
            self.stats = stats
        else:
            self.stats.merge(stats)
        aq = stats.stq.aq()
        self.sequence_aq.append(np.nan if aq is None else aq)
        self.space = self.space.merge(space)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{model}, {os.cpu_count()} cores (load average {load}), torch "
            f"{torch.__version__} with {torch.get_num_threads()} thread(s), Python "
            f"{platform.python_version()}")


def file_digest(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def save_sequence(path: Path, sequence: Sequence) -> None:
    """Cache one sequence: segment maps stacked, per-segment arrays concatenated."""
    segs = sequence.segments
    counts = np.array([s.num_segments for s in segs], np.int64)
    np.savez_compressed(
        path, counts=counts, maps=np.stack([s.segment_map for s in segs]).astype(np.int16),
        class_ids=np.concatenate([s.class_ids for s in segs]),
        scores=np.concatenate([s.scores for s in segs]),
        is_thing=np.concatenate([s.is_thing for s in segs]),
        boxes=np.concatenate([s.boxes for s in segs]),
        areas=np.concatenate([s.areas for s in segs]),
        embeddings=np.concatenate([s.embeddings for s in segs]),
        ground_truth=np.stack(sequence.ground_truth))


def load_sequence(path: Path, name: str) -> Sequence:
    data = np.load(path)
    bounds = np.concatenate([[0], np.cumsum(data["counts"])])
    fields = ("class_ids", "scores", "is_thing", "boxes", "areas", "embeddings")
    columns = {f: data[f] for f in fields}
    segments = [FrameSegments(segment_map.astype(np.int32),
                              *(columns[f][bounds[t]:bounds[t + 1]] for f in fields))
                for t, segment_map in enumerate(data["maps"])]
    return Sequence(name, segments, list(data["ground_truth"]))


def segment_sequence(segmenter: Segmenter, dataset: SyntheticDataset, index: int
                     ) -> tuple[Sequence, float]:
    """The model's segments of every frame of one sequence, and the model's seconds."""
    segments, ground_truth, seconds = [], [], 0.0
    for frame in dataset.sequence(index):
        start = time.perf_counter()
        segments.append(segmenter.segment([frame.image])[0])
        seconds += time.perf_counter() - start
        ground_truth.append(frame.panoptic)
    return Sequence(f"{dataset.split}/{index:04d}", segments, ground_truth), seconds


def sequences(args: argparse.Namespace, segmenter: Segmenter, digest: str, split: str
              ) -> Iterator[tuple[Sequence, float]]:
    """Yield (Sequence, model seconds) of a split, from the cache when it has them."""
    dataset = SyntheticDataset(split, args.sequences, args.frames, args.height, args.width)
    for index in range(args.sequences):
        path = None
        if args.cache:
            path = args.cache / (f"{digest}_{split}_{index:04d}_{args.frames}f_"
                                 f"{args.height}x{args.width}.npz")
            if path.is_file():
                yield load_sequence(path, f"{split}/{index:04d}"), 0.0
                continue
        sequence, seconds = segment_sequence(segmenter, dataset, index)
        if path is not None:
            save_sequence(path, sequence)
        yield sequence, seconds


def gt_segments(gt: np.ndarray, model: FrameSegments, space: LabelSpace) -> FrameSegments:
    """The ground-truth segments of a frame, each thing carrying the embedding of the
    model's thing segment that overlaps it most (mask IoU). A ground-truth thing that no
    model thing segment overlaps (the model missed it) is left void: there is no
    embedding the model would give it."""
    divisor = space.label_divisor
    ids, inverse = np.unique(gt, return_inverse=True)
    inverse = inverse.reshape(gt.shape)
    classes = ids // divisor
    is_thing = space.classes.is_thing_lut[np.minimum(classes, len(space.classes) - 1)]
    is_thing &= (ids % divisor != 0) & (classes < len(space.classes))
    keep = classes < len(space.classes)
    gt_things = np.flatnonzero(is_thing)
    model_things = np.flatnonzero(model.is_thing)
    embeddings = np.zeros((len(ids), model.embeddings.shape[1]), np.float32)
    embeddings[:, 0] = 1.0
    if len(model_things):
        iou = mask_iou(inverse, gt_things, model.segment_map, model_things)
        best = iou.argmax(axis=1)
        found = iou[np.arange(len(gt_things)), best] > 0
        embeddings[gt_things[found]] = model.embeddings[model_things[best[found]]]
        keep[gt_things[~found]] = False
    else:
        keep[gt_things] = False
    index = np.where(keep, np.cumsum(keep) - 1, -1)
    segment_map = index[inverse].astype(np.int32)
    kept = np.flatnonzero(keep)
    boxes = np.array([[sl[1].start, sl[0].start, sl[1].stop, sl[0].stop]
                      for sl in ndimage.find_objects(segment_map + 1, len(kept))],
                     np.float32).reshape(-1, 4)
    areas = np.bincount(segment_map[segment_map >= 0], minlength=len(kept)).astype(np.int64)
    return FrameSegments(segment_map, classes[kept].astype(np.int32),
                         np.ones(len(kept), np.float32), is_thing[kept], boxes, areas,
                         embeddings[kept])


def with_gt_masks(sequence: Sequence, space: LabelSpace) -> Sequence:
    return Sequence(sequence.name, [gt_segments(gt, s, space) for s, gt in
                                    zip(sequence.segments, sequence.ground_truth)],
                    sequence.ground_truth)


def track(sequence: Sequence, config: TrackerConfig, space: LabelSpace
          ) -> tuple[MetricStats, MatchingSpace]:
    """One tracker over one sequence's segments, scored against its ground truth."""
    tracker = make_tracker(config, space.label_divisor)
    evaluator = SequenceEvaluator(space, (1,), sequence.name)
    for segments, gt in zip(sequence.segments, sequence.ground_truth):
        ids = tracker.update(segments)
        pred = from_segments(segments.segment_map, segments.class_ids, ids,
                             space.label_divisor, space.classes.void_id)
        evaluator.add(gt, pred)
    return evaluator.finish(), tracker.matching_space()


def track_labels(sequence: Sequence, divisor: int, min_iou: float = 0.5) -> list[np.ndarray]:
    """Per frame, the ground-truth track (panoptic id) that covers most of each thing
    segment, when their mask IoU is above ``min_iou``; -1 otherwise."""
    labels = []
    for segments, gt in zip(sequence.segments, sequence.ground_truth):
        label = np.full(segments.num_segments, -1, np.int64)
        for k in np.flatnonzero(segments.is_thing):
            mask = segments.segment_map == k
            ids, counts = np.unique(gt[mask], return_counts=True)
            best = ids[np.argmax(counts)]
            if best % divisor == 0:
                continue
            iou = counts.max() / (mask.sum() + np.count_nonzero(gt == best) - counts.max())
            if iou > min_iou:
                label[k] = best
        labels.append(label)
    return labels


def oracle_stats(sequence: Sequence, space: LabelSpace) -> MetricStats:
    """AQ ceiling of these segments: each thing segment gets the id of the ground-truth
    track covering most of it (a segment covering none gets an id of its own)."""
    evaluator = SequenceEvaluator(space, (1,), sequence.name)
    fresh = 0
    for segments, gt, label in zip(sequence.segments, sequence.ground_truth,
                                   track_labels(sequence, space.label_divisor, 0.0)):
        ids = np.where(label >= 0, label % space.label_divisor, 0)
        for k in np.flatnonzero(segments.is_thing & (label < 0)):
            ids[k] = 500 + fresh % 499
            fresh += 1
        evaluator.add(gt, from_segments(segments.segment_map, segments.class_ids, ids,
                                        space.label_divisor, space.classes.void_id))
    return evaluator.finish()


def with_embeddings(sequence: Sequence, space: LabelSpace, kind: str) -> Sequence:
    """The same segments with other embeddings: ``constant`` (one vector for all, so
    that eq. 5 is location only) or ``track`` (a random unit vector per ground-truth
    track, one per segment covering none: perfect appearance)."""
    frames = []
    labels = track_labels(sequence, space.label_divisor, 0.0)
    rng = np.random.default_rng(0)
    for segments, label in zip(sequence.segments, labels):
        dim = segments.embeddings.shape[1]
        if kind == "constant":
            emb = np.full((segments.num_segments, dim), dim ** -0.5, np.float32)
        else:
            emb = rng.normal(size=(segments.num_segments, dim))
            for k in np.flatnonzero(label >= 0):
                emb[k] = np.random.default_rng(int(label[k])).normal(size=dim)
            emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
        frames.append(dataclasses.replace(segments, embeddings=emb))
    return Sequence(sequence.name, frames, sequence.ground_truth)


def id_continuity(loaded: list[Sequence], labels: list[list[np.ndarray]],
                  config: TrackerConfig, divisor: int) -> str:
    """How a tracker links the segments that cover a true track (IoU > 0.5): the share
    that keep the id the track had when last seen, 1, 2..7 or >= MIN_GAP frames before;
    and how many take an id last given to another true track (a false merge)."""
    kept = {"1": [0, 0], "2-7": [0, 0], f">={MIN_GAP}": [0, 0]}
    merged = links = 0
    for sequence, sequence_labels in zip(loaded, labels):
        tracker = make_tracker(config, divisor)
        last: dict[int, tuple[int, int]] = {}     # true track -> (frame, id)
        owner: dict[int, int] = {}                 # id -> true track it was last given to
        for t, (segments, label) in enumerate(zip(sequence.segments, sequence_labels)):
            ids = tracker.update(segments)
            for k in np.flatnonzero(label >= 0):
                track_id, given = int(label[k]), int(ids[k])
                if track_id in last:
                    gap = t - last[track_id][0]
                    key = "1" if gap == 1 else "2-7" if gap < MIN_GAP else f">={MIN_GAP}"
                    kept[key][0] += last[track_id][1] == given
                    kept[key][1] += 1
                links += 1
                merged += owner.get(given, track_id) != track_id
                last[track_id] = (t, given)
                owner[given] = track_id
    shares = ", ".join(f"after {key} frames {100 * n / max(total, 1):.1f} % of {total}"
                       for key, (n, total) in kept.items())
    return f"kept id {shares}; took the id of another track {merged} of {links}"


def embedding_check(loaded: list[Sequence], divisor: int) -> None:
    """Cosine of a track's embedding with the same track re-seen after >= MIN_GAP frames,
    against other tracks of its class in the same frame; and how often the same track is
    the most similar (appearance-only re-identification, what naive-MB relies on)."""
    same, other, hits, trials = [], [], 0, 0
    for sequence in loaded:
        labels = track_labels(sequence, divisor)
        last: dict[int, tuple[int, np.ndarray]] = {}
        for t, (segments, label) in enumerate(zip(sequence.segments, labels)):
            for k in np.flatnonzero(label >= 0):
                track_id = int(label[k])
                if track_id in last and t - last[track_id][0] >= MIN_GAP:
                    stored = last[track_id][1]
                    rivals = [last[r][1] for r in last if r != track_id
                              and r // divisor == track_id // divisor]
                    cos_same = float(stored @ segments.embeddings[k])
                    same.append(cos_same)
                    cos_other = [float(r @ segments.embeddings[k]) for r in rivals]
                    other += cos_other
                    trials += 1
                    hits += all(cos_same > c for c in cos_other)
            for k in np.flatnonzero(label >= 0):
                last[int(label[k])] = (t, segments.embeddings[k])
    if not trials:
        print("embeddings: no track re-seen after a gap")
        return
    print(f"embeddings: {trials} re-identifications after >= {MIN_GAP} frames unseen; cosine "
          f"to its own last embedding median {np.median(same):.3f} (p10 "
          f"{np.percentile(same, 10):.3f}), to other stored tracks of its class median "
          f"{np.median(other) if other else float('nan'):.3f} (p90 "
          f"{np.percentile(other, 90) if other else float('nan'):.3f}); own track the most "
          f"similar in {hits}/{trials} ({100 * hits / trials:.0f} %)")


def score_all(loaded: list[Sequence], config: TrackerConfig, space: LabelSpace) -> Score:
    score = Score()
    for sequence in loaded:
        score.add(*track(sequence, config, space))
    return score


def diagnose(loaded: list[Sequence], space: LabelSpace) -> None:
    """What limits AQ on these sequences: the segments, the embeddings, or the tracker."""
    embedding_check(loaded, space.label_divisor)
    print("id continuity of the segments covering a true track:")
    labels = [track_labels(sequence, space.label_divisor) for sequence in loaded]
    for mode in MODES:
        continuity = id_continuity(loaded, labels, TrackerConfig(mode=mode), space.label_divisor)
        print(f"  {mode:<20} {continuity}", flush=True)
    ceiling = Score()
    for sequence in loaded:
        ceiling.add(oracle_stats(sequence, space), MatchingSpace())
    print(f"AQ ceiling of these segments (each takes the id of the ground-truth track "
          f"covering most of it): {100 * ceiling.stats.stq.aq():.1f}")
    print("AQ with the embeddings replaced:")
    for kind, meaning in (("constant", "location only"), ("track", "perfect appearance")):
        variant = [with_embeddings(sequence, space, kind) for sequence in loaded]
        for mode in ("naive_mb", "hila_mb", "hila_mb_near_online"):
            score = score_all(variant, TrackerConfig(mode=mode), space)
            print(f"  {kind} ({meaning}), {mode:<20} AQ {100 * score.stats.stq.aq():5.1f}",
                  flush=True)
    settings = [dict(mode="hila_mb", temperature=t, alpha=a)
                for t, a in itertools.product((0.05, 0.2, 1.0), (0.2, 0.4, 0.6))]
    settings += [dict(mode="hila_mb", lam=lam) for lam in (0.5, 1.0)]
    settings += [dict(mode="hila_mb", tau=tau) for tau in (10, 60)]
    settings += [dict(mode="naive_mb", alpha=a) for a in (0.2, 0.6, 0.8)]
    settings += [dict(mode="naive_mb", tau=tau) for tau in (1, 10)]
    print("AQ around the defaults (the model's embeddings):")
    for overrides in settings:
        score = score_all(loaded, TrackerConfig(**overrides), space)
        label = ", ".join(f"{k}={v}" for k, v in overrides.items())
        print(f"  {label:<40} AQ {100 * score.stats.stq.aq():5.1f}  mean M x N "
              f"{score.space.mean:6.1f}", flush=True)


def print_table(scores: dict[tuple[str, str], dict[str, Score]], modes: list[str]) -> None:
    print("\n| split | segments | tracker | AQ | STQ | SQ | per-sequence AQ median (min..max) "
          "| HiLA-MB AQ higher / lower (sequences) | mean M x N | max M x N |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (split, source), by_mode in scores.items():
        for mode in modes:
            score = by_mode[mode]
            stq = score.stats.stq
            seq = np.array(score.sequence_aq) * 100
            versus = ""
            if mode != "hila_mb" and "hila_mb" in by_mode:
                diff = np.array(by_mode["hila_mb"].sequence_aq) - np.array(score.sequence_aq)
                versus = f"{np.sum(diff > 1e-9)} / {np.sum(diff < -1e-9)}"
            print(f"| {split} | {source} | {mode} | {100 * stq.aq():.1f} | "
                  f"{100 * stq.stq():.1f} | {100 * stq.sq():.1f} | {np.nanmedian(seq):.1f} "
                  f"({np.nanmin(seq):.1f}..{np.nanmax(seq):.1f}) | {versus} | "
                  f"{score.space.mean:.1f} | {score.space.largest} |")


def print_goal(scores: dict[tuple[str, str], dict[str, Score]]) -> None:
    for (split, source), by_mode in scores.items():
        if split != "occlusion" or "hila_mb" not in by_mode or any(
                b not in by_mode for b in BASELINES):
            continue
        hila = 100 * by_mode["hila_mb"].stats.stq.aq()
        margins = {b: hila - 100 * by_mode[b].stats.stq.aq() for b in BASELINES}
        verdict = "reached" if min(margins.values()) >= GOAL_POINTS else "NOT reached"
        print(f"goal (occlusion split, {source}: HiLA-MB AQ >= each baseline + "
              f"{GOAL_POINTS:.0f} points): {verdict}; margin "
              + ", ".join(f"{m:+.1f} vs {b}" for b, m in margins.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None,
                        help=f"checkpoint; default: the package's models/{DEFAULT_MODEL}")
    parser.add_argument("--sequences", type=int, default=10, help="sequences per split")
    parser.add_argument("--frames", type=int, default=60,
                        help="frames per sequence (the occlusion split needs >= 40)")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--splits", nargs="+", default=["occlusion", "test"],
                        choices=["occlusion", "test", "val"])
    parser.add_argument("--modes", nargs="+", default=["iou_stitch", "naive_mb", "hila_mb",
                                                       "hila_mb_near_online"], choices=MODES)
    parser.add_argument("--segments", nargs="+", default=["model", "gt masks"],
                        choices=["model", "gt masks"],
                        help="model: the model's segments; gt masks: the ground-truth "
                             "segments with the model's embeddings")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder for the segments of each sequence (reused when the "
                             "checkpoint, split, frames and size match)")
    parser.add_argument("--diagnose", action="store_true",
                        help="also: embedding separability, AQ ceiling, AQ with the "
                             "embeddings replaced and around the defaults")
    args = parser.parse_args()
    torch.set_num_threads(1)

    checkpoint = args.model or model_path(DEFAULT_MODEL)
    segmenter = load_segmenter(PipelineConfig(model=str(checkpoint), threads=1))
    space = LabelSpace(segmenter.classes, SyntheticDataset.label_divisor)
    digest = file_digest(checkpoint)
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"model: {checkpoint} (sha1 {digest}), input {segmenter.input_size[0]}x"
          f"{segmenter.input_size[1]}; tracker defaults {TrackerConfig()}")

    scores: dict[tuple[str, str], dict[str, Score]] = {}
    diagnosed = "occlusion" if "occlusion" in args.splits else args.splits[0]
    kept: dict[str, list[Sequence]] = {}
    start = time.perf_counter()
    model_seconds, frames = 0.0, 0
    for split in args.splits:
        for source in args.segments:
            scores[split, source] = {mode: Score() for mode in args.modes}
        for sequence, seconds in sequences(args, segmenter, digest, split):
            model_seconds += seconds
            frames += len(sequence.segments)
            variants = {"model": sequence}
            if "gt masks" in args.segments:
                variants["gt masks"] = with_gt_masks(sequence, space)
            for source in args.segments:
                for mode in args.modes:
                    scores[split, source][mode].add(
                        *track(variants[source], TrackerConfig(mode=mode), space))
            if args.diagnose and split == diagnosed:
                for source in args.segments:
                    kept.setdefault(source, []).append(variants[source])
        print(f"{split}: {args.sequences} sequences x {args.frames} frames at "
              f"{args.height}x{args.width} done ({time.perf_counter() - start:.0f} s)",
              flush=True)
    if model_seconds:
        print(f"model: {1e3 * model_seconds / frames:.0f} ms per frame over {frames} frames")
    print_table(scores, args.modes)
    print()
    print_goal(scores)
    for source, loaded in kept.items():
        print(f"\ndiagnostics: {diagnosed} split, {source} segments")
        diagnose(loaded, space)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    try:
        main()
    except VpsRosError as exc:
        print(f"ablation_tracking: {exc}", file=sys.stderr)
        sys.exit(2)
