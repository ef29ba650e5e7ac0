"""Segmenter + memory buffer + panoptic encoding, frame by frame (DESIGN.md).

One :class:`Pipeline` per camera stream holds that stream's tracker state; several
pipelines may share one :class:`~vps_ros.model.Segmenter`, and :func:`step_batch` runs
one frame of each through a single batched model call (the node batches its cameras
this way). ROS-free: the node, the offline replay and the tests all use this.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .config import flatten_dotted, from_mapping, load_yaml, nest_dotted, param
from .errors import ConfigError
from .model import PostprocessConfig, Segmenter
from .model.checkpoint import load_checkpoint
from .panoptic import DEFAULT_LABEL_DIVISOR, check_divisor, from_segments
from .resources import model_path
from .tracking import TrackerConfig, make_tracker
from .types import FrameSegments, TrackedFrame, TrackedObject

OUTPUT_SCALES = ("input", "model")
DEFAULT_MODEL = "default.pt"


@dataclass(frozen=True)
class PipelineConfig:
    """What a pipeline needs: the model, the output resolution, thresholds, tracker.

    These are also the perception node's parameters of the same names (the node adds
    its ROS-only ones), so a node parameters file configures an offline run too.
    """

    model: str = param("", "segmenter checkpoint (.pt); empty: the package's "
                       f"models/{DEFAULT_MODEL}")
    device: str = param("cpu", "torch device: cpu, cuda or cuda:N (cuda without a GPU: "
                        "cpu, with a warning)")
    input_height: int = param(0, "height images are resized to for the network (a "
                              "multiple of 32); 0: the checkpoint's", lo=0, hi=8192)
    input_width: int = param(0, "width images are resized to for the network (a multiple "
                             "of 32); 0: the checkpoint's", lo=0, hi=8192)
    threads: int = param(1, "CPU threads of the model (torch intra-op threads, for the "
                         "whole process); 0: torch's default, one per core. 1 leaves the "
                         "other cores to the rest of the robot: on a busy CPU, torch "
                         "threads that compete for cores run several times slower",
                         lo=0, hi=1024)
    compile: bool = param(False, "compile the network with torch.compile (frozen weights, "
                          "one image per call): faster on a CPU (docs/models.md); the first "
                          "start compiles for about a minute, later starts reuse the disk "
                          "cache; without a C++ compiler it logs why and runs uncompiled")
    output_scale: str = param("input", "resolution of the panoptic output and of boxes: "
                              "input (the camera image's) or model (the network's input "
                              "size, cheaper)", choices=OUTPUT_SCALES)
    label_divisor: int = param(DEFAULT_LABEL_DIVISOR, "panoptic value = class_id * "
                               "label_divisor + track_id; track ids stay below it",
                               lo=2, hi=8388607)
    postprocess: PostprocessConfig = param(PostprocessConfig(), "segmenter thresholds")
    tracker: TrackerConfig = param(TrackerConfig(), "memory buffer (HiLA-MB) settings")

    def __post_init__(self) -> None:
        for name in ("input_height", "input_width"):
            if getattr(self, name) % 32:
                raise ConfigError(f"{name}: {getattr(self, name)} is not a multiple of 32 "
                                  "(the network's output stride)")
        if (self.input_height == 0) != (self.input_width == 0):
            raise ConfigError("input_height and input_width: set both or neither "
                              f"(got {self.input_height}x{self.input_width})")
        try:
            check_divisor(self.label_divisor)
        except ValueError as exc:
            raise ConfigError(f"label_divisor: {exc}") from None

    @classmethod
    def from_params_file(cls, path: str | Path,
                         node_name: str = "perception_node") -> "PipelineConfig":
        """The pipeline's part of a ROS 2 parameters file (such as
        config/perception.yaml): the entries of ``/**`` and of ``node_name`` merged,
        keys other than this class's fields (topics, cameras, ...) left out."""
        values = read_params_file(path, node_name)
        names = {f.name for f in dataclasses.fields(cls)}
        return from_mapping(cls, {k: v for k, v in values.items() if k in names},
                            f"{path}: {node_name}")


def read_params_file(path: str | Path, node_name: str) -> dict[str, Any]:
    """The nested ``ros__parameters`` that a ROS 2 parameters file gives ``node_name``:
    the sections ``/**``, ``node_name`` and ``/<namespace>/node_name``, in file order."""
    data = load_yaml(path)
    merged: dict[str, Any] = {}
    for key, section in data.items():
        if key != "/**" and str(key).rsplit("/", 1)[-1] != node_name:
            continue
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"),
                                                             dict):
            raise ConfigError(f"{path}: section {key!r} has no ros__parameters mapping")
        merged.update(flatten_dotted(section["ros__parameters"]))
    return nest_dotted(merged)


def load_segmenter(config: PipelineConfig) -> Segmenter:
    """The segmenter ``config`` names, with its thresholds and input size applied.

    A missing or bad checkpoint raises CheckpointError naming the file; "cuda" without
    a GPU runs on the CPU with a logged warning. The input size is a setting of the
    network's config, not of its weights: the network is convolutional up to stride-32
    attention over whatever grid it gets, so any multiple of 32 runs (smaller is
    faster and coarser).
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    path = Path(config.model) if config.model else model_path(DEFAULT_MODEL)
    checkpoint = load_checkpoint(path)
    net = checkpoint.net
    if config.input_height:
        net.config = dataclasses.replace(net.config, input_height=config.input_height,
                                         input_width=config.input_width)
    return Segmenter(net, checkpoint.classes, config.device, config.postprocess,
                     config.compile)


class Pipeline:
    """One camera stream: segment, track, encode. Not thread-safe; one caller at a time."""

    def __init__(self, segmenter: Segmenter, tracker: TrackerConfig = TrackerConfig(),
                 label_divisor: int = DEFAULT_LABEL_DIVISOR, output_scale: str = "input") -> None:
        if output_scale not in OUTPUT_SCALES:
            raise ConfigError(f"output_scale: {output_scale!r} is not one of {OUTPUT_SCALES}")
        self.segmenter = segmenter
        self.label_divisor = label_divisor
        self.output_scale = output_scale
        self._tracker = make_tracker(tracker, label_divisor)
        self._last_stamp_ns: int | None = None

    @classmethod
    def from_config(cls, config: PipelineConfig,
                    segmenter: Segmenter | None = None) -> "Pipeline":
        """A pipeline as ``config`` describes it; pass ``segmenter`` to share one."""
        return cls(segmenter or load_segmenter(config), config.tracker, config.label_divisor,
                   config.output_scale)

    @property
    def tracker_config(self) -> TrackerConfig:
        return self._tracker.config

    def update_tracker(self, config: TrackerConfig) -> None:
        """Use ``config`` from the next frame on; the memory is kept."""
        self._tracker.update_config(config)

    def reset(self) -> None:
        """Forget every tracked object (a new video, or the reset service)."""
        self._tracker.reset()
        self._last_stamp_ns = None

    def step(self, image: np.ndarray, stamp_ns: int) -> TrackedFrame:
        """The panoptic map and objects of one RGB uint8 frame."""
        return step_batch([self], [image], [stamp_ns])[0]

    def track(self, segments: FrameSegments, stamp_ns: int,
              timings_ms: dict[str, float] | None = None) -> TrackedFrame:
        """Second half of :meth:`step`: track ``segments`` (this stream's next frame)
        and encode the panoptic map.

        A stamp older than the previous frame's (a bag looped, a clock jumped back)
        clears the memory first, so old objects cannot claim ids in the new timeline;
        the result's ``memory_reset`` says so.
        """
        timings = dict(timings_ms or {})
        reason = ""
        if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns:
            reason = (f"stamp {stamp_ns} ns is {(self._last_stamp_ns - stamp_ns) / 1e6:.1f} ms "
                      "before the previous frame's: memory cleared")
            self._tracker.reset()
        self._last_stamp_ns = stamp_ns

        start = time.perf_counter()
        track_ids = self._tracker.update(segments)
        things = self._tracker.objects()
        timings["track"] = (time.perf_counter() - start) * 1e3

        start = time.perf_counter()
        classes = self.segmenter.classes
        panoptic = from_segments(segments.segment_map, segments.class_ids, track_ids,
                                 self.label_divisor, classes.void_id)
        objects = _stuff_objects(segments) + things
        timings["panoptic"] = (time.perf_counter() - start) * 1e3
        timings["total"] = sum(v for k, v in timings.items() if k != "total")
        return TrackedFrame(stamp_ns, panoptic, self.label_divisor, segments, track_ids,
                            objects, timings, reason)


def step_batch(pipelines: Sequence[Pipeline], images: Sequence[np.ndarray],
               stamps_ns: Sequence[int]) -> list[TrackedFrame]:
    """One frame for each pipeline, segmented in one model call.

    The pipelines must share one segmenter and output scale; each image goes with the
    pipeline at the same position. Every frame's ``timings_ms["segment"]`` is the
    batch's model time (what that frame waited for).
    """
    segments, segment_ms = segment_batch(pipelines, images)
    return [pipeline.track(s, stamp, {"segment": segment_ms})
            for pipeline, s, stamp in zip(pipelines, segments, stamps_ns)]


def segment_batch(pipelines: Sequence[Pipeline], images: Sequence[np.ndarray]
                  ) -> tuple[list[FrameSegments], float]:
    """First half of :func:`step_batch`: (segments per image, model time in ms)."""
    if len(pipelines) != len(images):
        raise ValueError(f"{len(pipelines)} pipelines but {len(images)} images")
    if not pipelines:
        return [], 0.0
    segmenter, scale = pipelines[0].segmenter, pipelines[0].output_scale
    if any(p.segmenter is not segmenter or p.output_scale != scale for p in pipelines):
        raise ValueError("pipelines batched together must share one segmenter and "
                         "output_scale")
    start = time.perf_counter()
    segments = segmenter.segment(list(images), at_input_resolution=scale == "input")
    return segments, (time.perf_counter() - start) * 1e3


def _stuff_objects(segments: FrameSegments) -> list[TrackedObject]:
    stuff = np.flatnonzero(~segments.is_thing).tolist()
    classes, scores = segments.class_ids.tolist(), segments.scores.tolist()
    areas, boxes = segments.areas.tolist(), segments.boxes.tolist()
    return [TrackedObject(0, classes[k], False, scores[k], areas[k], tuple(boxes[k]))
            for k in stuff]

