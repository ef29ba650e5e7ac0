"""A contact sheet of a video dataset: a few frames per sequence, each above its coloured
ground truth with the track id written on every thing (``vps-ros synth --preview``)."""
from __future__ import annotations

import cv2
import numpy as np

from ..palette import colorize
from ..panoptic import decode
from .frames import VideoDataset, VideoFrame

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _label(image: np.ndarray, text: str, org: tuple[int, int], scale: float) -> None:
    cv2.putText(image, text, org, _FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, org, _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _cell(frame: VideoFrame, dataset: VideoDataset) -> np.ndarray:
    image = frame.image.copy()
    scale = max(0.3, image.shape[0] / 512)
    _label(image, f"seq {frame.sequence} frame {frame.index}", (4, int(16 * scale) + 4), scale)
    if frame.panoptic is None:
        return np.concatenate([image, np.zeros_like(image)], axis=0)
    truth = colorize(frame.panoptic, dataset.classes, dataset.label_divisor)
    _, instances = decode(frame.panoptic, dataset.label_divisor)
    for value in np.unique(frame.panoptic[instances > 0]):
        ys, xs = np.nonzero(frame.panoptic == value)
        centre = (int(xs.mean()) - 4, int(ys.mean()) + 4)
        _label(truth, str(int(value) % dataset.label_divisor), centre, 0.8 * scale)
    return np.concatenate([image, truth], axis=0)


def contact_sheet(dataset: VideoDataset, sequences: int = 3, columns: int = 4) -> np.ndarray:
    """RGB sheet: one row per sequence (the first ``sequences``), ``columns`` frames spread
    over each, images above ground truth."""
    by_sequence: dict[str, list[VideoFrame]] = {}
    for frame in dataset:
        if frame.sequence not in by_sequence and len(by_sequence) == sequences:
            break
        by_sequence.setdefault(frame.sequence, []).append(frame)
    rows = []
    for frames in by_sequence.values():
        picks = np.linspace(0, len(frames) - 1, columns).round().astype(int)
        cells = [_cell(frames[k], dataset) for k in picks]
        gap = np.full((cells[0].shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([c for cell in cells for c in (cell, gap)][:-1], axis=1))
    gap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([r for row in rows for r in (row, gap)][:-1], axis=0)
