"""Offline replay: every frame through an in-process Pipeline, one per camera (sharing
one segmenter), one frame at a time in stamp order: deterministic, as fast as the
machine allows, nothing dropped."""
from __future__ import annotations

import time
from typing import Iterable, Iterator

from ..model import MaskSegmenter
from ..pipeline import Pipeline, PipelineConfig, load_segmenter
from .cameras import Camera, ReplayFrame
from .outputs import MessageFactory, ReplayOutput, offline_output


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
        for frame in frames:
            start = time.perf_counter()
            result = self.pipelines[frame.camera].step(frame.image, frame.stamp_ns)
            latency_ms = (time.perf_counter() - start) * 1e3
            yield frame, offline_output(frame.camera, result, self.factory, latency_ms)
