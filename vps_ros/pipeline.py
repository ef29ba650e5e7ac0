"""Segmenter + memory buffer + panoptic encoding, frame by frame (docs/architecture.md).

One :class:`Pipeline` per camera stream holds that stream's tracker state; several
pipelines may share one :class:`~vps_ros.model.MaskSegmenter`, and :func:`step_batch` runs
one frame of each through a single batched model call (the node batches its cameras
this way). ROS-free: the node, the offline replay and the tests all use this.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .config import (closest, flatten_dotted, from_mapping, load_yaml, nest_dotted, param,
                     suggest)
from .errors import ConfigError
from .model import MaskSegmenter, PostprocessConfig
from .model.limits import InputLimits
from .model.registry import LoadOptions, open_segmenter
from .model.resizing import RESIZE_MODES, tracked_at
from .panoptic import DEFAULT_LABEL_DIVISOR, check_divisor, from_segments
from .resources import model_path
from .tracking import TrackerConfig, make_tracker
from .types import FrameSegments, TrackedFrame, TrackedObject

OUTPUT_SCALES = ("input", "model")
# difflib ratio from which a section name is taken for a misspelled node name: one or
# two letters off "perception_node" (0.93 to 0.97); "perception_viz" (0.83) is another node
TYPO = 0.85
DEFAULT_MODEL = "default.pt"


@dataclass(frozen=True)
class PipelineConfig:
    """What a pipeline needs: the model, the output resolution, thresholds, tracker.

    These are also the perception node's parameters of the same names (the node adds
    its ROS-only ones), so a node parameters file configures an offline run too.
    """

    model: str = param("", "segmenter: a checkpoint (.pt), a folder holding a transformers "
                       "panoptic Mask2Former/OneFormer/EoMT/VidEoMT, or "
                       "hf:ORG/NAME[@REVISION] (docs/"
                       f"pretrained.md); empty: the package's models/{DEFAULT_MODEL}")
    classes: str = param("", "class table of the model's outputs: a name of config/"
                         "classes_<name>.yaml or a YAML path; empty: a transformers model's "
                         "labels matched by name to a table in config/, a checkpoint's own")
    device: str = param("cpu", "torch device: cpu, cuda or cuda:N (cuda without a GPU: "
                        "cpu, with a warning)")
    backend: str = param("openvino", "what runs the network: torch, or an inference engine "
                         "(openvino: CPU; onnxruntime: CPU, or TensorRT/CUDA on a GPU) that "
                         "runs a checkpoint exported at configure (cached) or an exported "
                         "file (docs/deployment.md); an engine that cannot run here falls "
                         "back to torch with a warning", choices=("torch", "openvino",
                                                                  "onnxruntime"))
    input_height: int = param(0, "height images are resized to for the network (a "
                              "multiple of 32); 0: the model's (docs/pretrained.md)", lo=0, hi=8192)
    input_width: int = param(0, "width images are resized to for the network (a multiple "
                             "of 32); 0: the model's (docs/pretrained.md)", lo=0, hi=8192)
    threads: int = param(1, "CPU threads of the model (torch intra-op threads, for the "
                         "whole process); 0: torch's default, one per core. 1 leaves the "
                         "other cores to the rest of the robot: on a busy CPU, torch "
                         "threads that compete for cores run several times slower",
                         lo=0, hi=1024)
    precision: str = param("auto", "transformers EoMT/VidEoMT: auto (fp16 autocast on CUDA, "
                           "fp32 on the CPU), fp32, fp16 or bf16 (bf16 on a CPU pays only "
                           "with avx512_bf16/AMX)", choices=("auto", "fp32", "fp16", "bf16"))
    quantization: str = param("none", "int8: the network quantized by OpenVINO NNCF at "
                              "configure (backend openvino; cached; its mask heads kept in "
                              "fp32: docs/deployment.md); none: fp32; auto: int8 on backend "
                              "openvino, fp32 on the others", choices=("auto", "none", "int8"))
    compile: bool = param(False, "backend torch: compile the network with torch.compile "
                          "(frozen weights, one image per call): faster on a CPU "
                          "(docs/models.md); the first start compiles for about a minute, "
                          "later starts reuse the disk cache; without a C++ compiler it logs "
                          "why and runs uncompiled")
    resize: str = param("letterbox", "how camera images are fitted into the network input: "
                        "letterbox (aspect kept, scaled to fit and padded: a 16:9 or 4:3 "
                        "camera is not squashed) or stretch (resized to the input size "
                        "whatever the aspect)", choices=RESIZE_MODES)
    output_scale: str = param("input", "resolution of the panoptic output and of boxes: "
                              "input (the camera image's) or model (the image's part of "
                              "the network input, cheaper)", choices=OUTPUT_SCALES)
    label_divisor: int = param(DEFAULT_LABEL_DIVISOR, "panoptic value = class_id * "
                               "label_divisor + track_id; track ids stay below it",
                               lo=2, hi=8388607)
    postprocess: PostprocessConfig = param(PostprocessConfig(), "segmenter thresholds")
    tracker: TrackerConfig = param(TrackerConfig(), "memory buffer (HiLA-MB) settings")
    limits: InputLimits = param(InputLimits(), "bounds on camera frames, the network input "
                                "and the engines' caches (docs/reliability.md)")

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
    the sections ``/**``, ``node_name`` and ``/<namespace>/node_name``, in file order.

    A section for no node of that name is another node's (a file shared by a robot's
    nodes), unless it looks like a misspelling of ``node_name`` or no section at all
    applies: both would leave the node at its defaults without a word, so they are
    refused naming the section and the nearest valid name.
    """
    data = load_yaml(path)
    check_sections(data, path, node_name)
    merged: dict[str, Any] = {}
    for key, section in data.items():
        if not _applies(key, node_name):
            continue
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"),
                                                             dict):
            raise ConfigError(f"{path}: section {key!r} has no ros__parameters mapping")
        merged.update(flatten_dotted(section["ros__parameters"]))
    return nest_dotted(merged)


def check_sections(data: dict[str, Any], path: str | Path, node_name: str) -> None:
    """Refuse a parameters file section misspelling ``node_name`` (``perception_nodee``),
    or a file none of whose sections applies to it. ``node_name`` extended at a ``_``
    or digit (``perception_node_rear``, ``perception_node2``) is another instance."""
    if not data:
        return
    for key in data:
        *namespace, name = str(key).rsplit("/", 1)
        if not _applies(key, node_name) and _misspelled(name, node_name):
            valid = "/".join([*namespace, node_name])
            raise ConfigError(f"{path}: section {suggest(key, [valid])} names no node; its "
                              "parameters would be ignored")
    if not any(_applies(key, node_name) for key in data):
        raise ConfigError(f"{path}: no section for {node_name}: "
                          f"{', '.join(suggest(key, [node_name, '/**']) for key in data)}; "
                          f"use {node_name} or /**")


def _applies(key: Any, node_name: str) -> bool:
    return key == "/**" or str(key).rsplit("/", 1)[-1] == node_name


def _misspelled(name: str, node_name: str) -> bool:
    after = name[len(node_name):] if name.startswith(node_name) else ""
    before = name[:-len(node_name)] if name.endswith(node_name) else ""
    if after[:1] == "_" or after[:1].isdigit() or before[-1:] == "_":
        return False        # another instance of the node
    return closest(name, [node_name], cutoff=TYPO) is not None


def load_segmenter(config: PipelineConfig, background_builds: bool = False) -> MaskSegmenter:
    """The segmenter ``config`` names (any kind the model registry knows: see
    :mod:`vps_ros.model.registry`), with its thresholds and input size applied.

    A missing or bad model raises a :class:`~vps_ros.errors.VpsRosError` naming it;
    "cuda" without a GPU runs on the CPU with a logged warning. ``background_builds``:
    an engine opens the session of a new input size in a thread, torch running that
    size meanwhile (:class:`~vps_ros.model.engines.segmenter.EngineSegmenter`).
    """
    source = config.model or str(model_path(DEFAULT_MODEL))
    input_size = (config.input_height, config.input_width) if config.input_height else None
    return open_segmenter(source, LoadOptions(
        config.device, input_size, config.postprocess, config.compile,
        backend=config.backend, classes=config.classes, resize=config.resize,
        threads=config.threads, precision=config.precision,
        quantization=config.quantization, limits=config.limits,
        background_builds=background_builds))


class Pipeline:
    """One camera stream: segment, track, encode. Not thread-safe; one caller at a time."""

    def __init__(self, segmenter: MaskSegmenter, tracker: TrackerConfig = TrackerConfig(),
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
                    segmenter: MaskSegmenter | None = None) -> "Pipeline":
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
        """Forget every tracked object (a new video, or the reset service), and what
        the segmenter carries between frames (shared by the pipelines of one batch)."""
        self._tracker.reset()
        self.segmenter.reset()
        self._last_stamp_ns = None

    def step(self, image: np.ndarray, stamp_ns: int) -> TrackedFrame:
        """The panoptic map and objects of one RGB uint8 frame (a batch of one)."""
        return step_batch([self], [image], [stamp_ns])[0]

    def track(self, segments: FrameSegments, stamp_ns: int,
              timings_ms: dict[str, float] | None = None,
              image_size: tuple[int, int] | None = None) -> TrackedFrame:
        """Second half of :meth:`step`: track ``segments`` (this stream's next frame, at
        model size) and encode the panoptic map, at ``image_size`` (the camera image's)
        when the output scale is ``input``.

        Tracking runs on the model-size segments (its boxes are normalised by the image
        size, so the scale does not change its decisions); the panoptic map, segments
        and objects are then mapped to the camera's size once (nearest neighbour).
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
        if self.output_scale == "input" and image_size and segments.image_size != image_size:
            segments, track_ids, things, panoptic = tracked_at(segments, track_ids, things,
                                                               panoptic, image_size)
        objects = _stuff_objects(segments) + things
        timings["panoptic"] = (time.perf_counter() - start) * 1e3
        timings["total"] = sum(v for k, v in timings.items() if k != "total")
        return TrackedFrame(stamp_ns, panoptic, self.label_divisor, segments, track_ids,
                            objects, timings, reason)


# A frame of a batch lost to its tracking: its position in the batch, and why.
FrameLost = Callable[[int, Exception], None]


def step_batch(pipelines: Sequence[Pipeline], images: Sequence[np.ndarray],
               stamps_ns: Sequence[int], lost: FrameLost | None = None
               ) -> list[TrackedFrame | None]:
    """One frame for each pipeline, segmented in one model call, then tracked and
    encoded stream by stream: the one entry for a batch of frames, of the node (one
    waiting frame per camera) and of offline replay (:meth:`Pipeline.step`).

    The pipelines must share one segmenter; each image goes with the pipeline at the
    same position. Every frame's ``timings_ms["segment"]`` is the batch's model time
    (what that frame waited for). A failing model call fails the batch. A frame whose
    tracking fails fails the batch too, unless ``lost`` is given: then ``lost(position,
    exception)`` is called, that frame's result is None and the others go on.
    """
    if len(pipelines) != len(images):
        raise ValueError(f"{len(pipelines)} pipelines but {len(images)} images")
    if not pipelines:
        return []
    segmenter = pipelines[0].segmenter
    if any(p.segmenter is not segmenter for p in pipelines):
        raise ValueError("pipelines batched together must share one segmenter")
    start = time.perf_counter()
    segments = segmenter.segment(list(images), at_input_resolution=False)
    timings = {"segment": (time.perf_counter() - start) * 1e3}
    results: list[TrackedFrame | None] = []
    for k, (pipeline, frame, stamp, image) in enumerate(zip(pipelines, segments, stamps_ns,
                                                            images)):
        try:
            results.append(pipeline.track(frame, stamp, timings, image.shape[:2]))
        except Exception as exc:
            if lost is None:
                raise
            lost(k, exc)
            results.append(None)
    return results


def _stuff_objects(segments: FrameSegments) -> list[TrackedObject]:
    stuff = np.flatnonzero(~segments.is_thing).tolist()
    classes, scores = segments.class_ids.tolist(), segments.scores.tolist()
    areas, boxes = segments.areas.tolist(), segments.boxes.tolist()
    return [TrackedObject(0, classes[k], False, scores[k], areas[k], tuple(boxes[k]))
            for k in stuff]

