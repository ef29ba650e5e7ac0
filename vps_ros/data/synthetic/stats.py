"""How hard a synthetic split is for a tracker (``vps-ros synth stats``).

Per split: sequences, frames, thing tracks per sequence, the share of tracks occluded by
more than half in at least one frame, the number of full occlusions lasting at least
MIN_FULL_OCCLUSION frames after which the track is seen again, and the number of
look-alike pairs (two tracks of identical appearance in one sequence).

A track counts when it is labelled in at least one frame. In a frame where it is in
view (it would cover at least ``min_visible_area`` pixels if nothing were in front),
its occlusion is 1 - visible / amodal area; it is fully occluded when no pixel carries
its id (pixels of a fragment below ``min_visible_area`` are void, so count as hidden).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..formats.files import read_json, write_json
from .dataset import SequenceMeta

MIN_FULL_OCCLUSION = 8
META_GLOB = "synth_meta_*.json"


@dataclass(frozen=True)
class SplitStats:
    split: str
    sequences: int
    frames: int
    tracks: int
    occluded_tracks: int          # tracks occluded > 50 % in at least one frame
    full_occlusions: int          # fully hidden >= MIN_FULL_OCCLUSION frames, then seen again
    lookalike_pairs: int

    @property
    def tracks_per_sequence(self) -> float:
        return self.tracks / max(1, self.sequences)

    @property
    def occluded_share(self) -> float:
        return self.occluded_tracks / max(1, self.tracks)


def full_occlusions(visible: np.ndarray, amodal: np.ndarray, min_area: int,
                    min_frames: int = MIN_FULL_OCCLUSION) -> list[tuple[int, int]]:
    """(start, length) of the runs of frames in which a track is in view but has no
    labelled pixel, at least ``min_frames`` long, with the track labelled in the frames
    just before and just after the run."""
    hidden = (visible == 0) & (amodal >= min_area)
    padded = np.concatenate([[False], hidden, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    runs = []
    for start, stop in zip(edges[::2], edges[1::2]):
        seen_before = start > 0 and visible[start - 1] > 0
        seen_after = stop < len(visible) and visible[stop] > 0
        if stop - start >= min_frames and seen_before and seen_after:
            runs.append((int(start), int(stop - start)))
    return runs


def split_stats(split: str, metas: list[SequenceMeta]) -> SplitStats:
    tracks = occluded = full = pairs = frames = 0
    for meta in metas:
        frames += meta.visible.shape[0]
        labelled = meta.visible.max(axis=0, initial=0) > 0
        in_view = meta.amodal >= meta.min_visible_area
        half = in_view & (meta.visible < 0.5 * meta.amodal)
        tracks += int(labelled.sum())
        occluded += int((labelled & half.any(axis=0)).sum())
        for k in np.flatnonzero(labelled):
            runs = full_occlusions(meta.visible[:, k], meta.amodal[:, k], meta.min_visible_area)
            full += len(runs)
        groups = meta.groups[labelled & (meta.groups >= 0)]
        _, sizes = np.unique(groups, return_counts=True)
        pairs += int((sizes * (sizes - 1) // 2).sum())
    return SplitStats(split, len(metas), frames, tracks, occluded, full, pairs)


def format_table(stats: list[SplitStats]) -> str:
    header = (f"{'split':<10} {'sequences':>9} {'frames':>7} {'tracks/seq':>10} "
              f"{'occluded>50%':>12} {'full occl>=' + str(MIN_FULL_OCCLUSION):>13} "
              f"{'look-alike pairs':>16}")
    lines = [header, "-" * len(header)]
    for s in stats:
        lines.append(f"{s.split:<10} {s.sequences:>9} {s.frames:>7} {s.tracks_per_sequence:>10.1f} "
                     f"{100 * s.occluded_share:>11.1f}% {s.full_occlusions:>13} "
                     f"{s.lookalike_pairs:>16}")
    return "\n".join(lines)


def write_meta(path: Path, split: str, metas: list[SequenceMeta], size: tuple[int, int]) -> None:
    write_json(path, {"split": split, "height": size[0], "width": size[1],
                      "sequences": [m.to_dict() for m in metas]})


def read_meta(path: Path) -> tuple[str, list[SequenceMeta]]:
    data = read_json(path, "synthetic split metadata")
    try:
        return str(data["split"]), [SequenceMeta.from_dict(s) for s in data["sequences"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: malformed synthetic split metadata ({exc!r})") from None


def folder_stats(folder: Path) -> list[SplitStats]:
    """Statistics of every split written into ``folder`` by ``vps-ros synth``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    paths = sorted(folder.glob(META_GLOB))
    if not paths:
        raise DataError(f"{folder}: no {META_GLOB} here; write a split with "
                        f"`vps-ros synth {folder}`")
    return [split_stats(*read_meta(path)) for path in paths]
