"""Class-aware sampling of training frames and focus crops (``sampling:`` of the config).

Pedestrians and cyclists are rare and small in driving scenes, so uniform sampling of
frames and crops shows them little. Frames are drawn in proportion to a weight, the
largest weight of the classes a frame shows (repeat-factor sampling per frame, after
LVIS, Gupta et al. 2019), and a focus crop is placed on one of their segments, at a
higher resolution, so the small things fill more of the crop's pixels.
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from .config import SamplingConfig, class_weight_vector
from .frames import NO_TRACK, TrainFrame


class ClassSampler:
    """Frame weights and focus-crop centres of one run's training frames."""

    def __init__(self, config: SamplingConfig, class_names: list[str]) -> None:
        self.config = config
        self.weights = np.asarray(class_weight_vector(config.frame_weights, class_names,
                                                      "sampling.frame_weights"))
        self.focus_classes = np.array([class_names.index(w.name)
                                       for w in config.frame_weights], np.int64)

    @property
    def active(self) -> bool:
        return len(self.focus_classes) > 0

    def frame_weight(self, frame: TrainFrame) -> float:
        """The largest weight of the classes ``frame`` shows with >= min_pixels pixels."""
        areas = _segment_areas(frame)
        pixels = np.bincount(frame.classes, weights=areas, minlength=len(self.weights))
        shown = pixels[:len(self.weights)] >= self.config.min_pixels
        return float(self.weights[shown].max()) if shown.any() else 1.0

    def cumulative_weights(self, frames, desc: str = "sampling weights") -> np.ndarray:
        """Running sum of the weights of every frame of ``frames`` (sequence order); each
        frame is read once."""
        weights = [self.frame_weight(frames.load(s, i))
                   for s, n in enumerate(tqdm(frames.lengths, desc=desc, unit="seq",
                                              leave=False)) for i in range(n)]
        return np.cumsum(weights)

    def focus_centers(self, pair: tuple[TrainFrame, TrainFrame], rng: np.random.Generator
                      ) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        """(y, x) centroids of a focus segment in each frame of ``pair``: a random one in
        the first, the same track in the second where it is there (else a random one);
        None for a frame without any."""
        first, track = self._focus(pair[0], rng, None)
        second, _ = self._focus(pair[1], rng, track)
        return first, second

    def _focus(self, frame: TrainFrame, rng: np.random.Generator, track: int | None
               ) -> tuple[tuple[float, float] | None, int | None]:
        areas = _segment_areas(frame)
        candidates = np.flatnonzero(np.isin(frame.classes, self.focus_classes)
                                    & (areas >= self.config.min_pixels))
        if not len(candidates):
            return None, None
        same = candidates[frame.tracks[candidates] == track] if track is not None else []
        g = int(same[0]) if len(same) else int(candidates[rng.integers(len(candidates))])
        ys, xs = np.nonzero(frame.ids == g)
        chosen = int(frame.tracks[g])
        return (float(ys.mean()), float(xs.mean())), (None if chosen == NO_TRACK else chosen)


def _segment_areas(frame: TrainFrame) -> np.ndarray:
    """Pixels of every segment of ``frame`` (void, -1, not counted)."""
    return np.bincount(frame.ids.ravel().astype(np.int64) + 1,
                       minlength=len(frame.classes) + 1)[1:len(frame.classes) + 1]
