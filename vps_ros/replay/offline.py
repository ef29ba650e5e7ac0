"""Offline replay: every frame through an in-process Pipeline, one per camera (sharing
one segmenter), one frame at a time in stamp order: deterministic, as fast as the
machine allows, nothing dropped but a frame beyond the maximum input size
(``limits``: refused before it is resized, logged once per camera, counted as dropped;
docs/reliability.md)."""
from __future__ import annotations

import logging
import time
from typing import Iterable, Iterator

from ..model import MaskSegmenter
from ..model.limits import FrameTooLarge
from ..pipeline import Pipeline, PipelineConfig, load_segmenter
from .cameras import Camera, ReplayFrame
from .outputs import MessageFactory, ReplayOutput, offline_output

log = logging.getLogger(__name__)


class OfflineEngine:
    def __init__(self, config: PipelineConfig, cameras: list[Camera],
                 segmenter: MaskSegmenter | None = None) -> None:
        """``segmenter``: one already loaded for ``config`` (a fleet worker keeps one
        for all its drives); the pipelines, and so the tracks, are new for each engine."""
        self.segmenter = segmenter or load_segmenter(config)
        self.classes = self.segmenter.classes
        self.pipelines = {c.name: Pipeline.from_config(config, self.segmenter) for c in cameras}
        self.factory = MessageFactory(self.classes)

    def __enter__(self) -> "OfflineEngine":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def replay(self, frames: Iterable[ReplayFrame]
               ) -> Iterator[tuple[ReplayFrame, ReplayOutput | None]]:
        refused: dict[str, int] = {}
        for frame in frames:
            start = time.perf_counter()
            try:
                result = self.pipelines[frame.camera].step(frame.image, frame.stamp_ns)
            except FrameTooLarge as exc:
                refused[frame.camera] = refused.get(frame.camera, 0) + 1
                if refused[frame.camera] == 1:
                    log.warning("%s frame %d: %s; counted as dropped", frame.camera,
                                frame.index, str(exc).split(": ", 1)[1])
                yield frame, None
                continue
            latency_ms = (time.perf_counter() - start) * 1e3
            yield frame, offline_output(frame.camera, result, self.factory, latency_ms)
        for camera, count in refused.items():
            if count > 1:
                log.warning("%s: %d frames beyond the maximum input size refused, counted "
                            "as dropped", camera, count)
