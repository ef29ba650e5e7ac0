"""What the ``model`` parameter can name, and the loader of each kind.

The ``model`` string (node parameter, ``--model`` of the CLI) is matched against the
kinds below in order; the first that matches loads it. Each kind's loader lives in its
own module, imported only when a model of that kind is opened, so optional engines
(``transformers``, inference runtimes) are needed only by those who use them. A new
kind is one more entry here; callers never ask which kind they hold.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import ConfigError
from ..types import ClassTable
from .engines.segmenter import on_backend
from .hub import is_hub_id
from .mask_segmenter import MaskSegmenter
from .options import LoadOptions


@dataclass(frozen=True)
class ModelKind:
    """One kind of model source: how to recognise it and which module loads it.

    ``module`` must define ``load(source: str, options: LoadOptions) -> MaskSegmenter``;
    it may define ``classes(source, options) -> ClassTable``, the class table of the
    model's outputs without loading its weights (else :func:`model_classes` loads it).
    """

    name: str
    matches: Callable[[str], bool]
    module: str
    description: str


def _is_checkpoint(source: str) -> bool:
    return source.endswith(".pt")


def _is_folder(source: str) -> bool:
    return Path(source).is_dir()


KINDS: list[ModelKind] = [
    ModelKind("checkpoint", _is_checkpoint, "vps_ros.model.segmenter",
              "a vps_ros checkpoint file (.pt)"),
    ModelKind("onnx", lambda source: source.endswith(".onnx"), "vps_ros.model.engines.segmenter",
              "a network exported by `vps-ros export` (.onnx; backend openvino or "
              "onnxruntime)"),
    ModelKind("openvino", lambda source: source.endswith(".xml"), "vps_ros.model.engines.segmenter",
              "an OpenVINO IR exported by `vps-ros export` (.xml beside its .bin; backend "
              "openvino)"),
    ModelKind("transformers-folder", _is_folder, "vps_ros.model.transformers_segmenter",
              "a folder holding a transformers panoptic Mask2Former/OneFormer "
              "(config.json + model.safetensors)"),
    ModelKind("transformers-hub", is_hub_id, "vps_ros.model.transformers_segmenter",
              "hf:ORG/NAME[@REVISION], such a model on the Hugging Face hub (through its "
              "cache)"),
]


def open_segmenter(source: str, options: LoadOptions = LoadOptions()) -> MaskSegmenter:
    """The segmenter that ``source`` names, loaded with ``options``, on the backend they
    ask for (or on torch, with the reason in its ``fallback``, where that engine cannot
    run it: :func:`~vps_ros.model.engines.segmenter.on_backend`).

    ``options.limits`` bounds the frames it takes and the network input it builds
    (:mod:`vps_ros.model.limits`). ``options.threads`` sets torch's intra-op threads
    (a setting of the process: torch has no other) and the engine's own.
    """
    module = _module_of(source)
    if options.threads:
        torch.set_num_threads(options.threads)
    segmenter = on_backend(module.load(source, options), source, options)
    segmenter.limits = options.limits
    return segmenter


def model_classes(source: str, options: LoadOptions = LoadOptions()) -> ClassTable:
    """The class table of the segmenter that ``source`` names."""
    module = _module_of(source)
    if hasattr(module, "classes"):
        return module.classes(source, options)
    return module.load(source, options).classes


def _module_of(source: str):
    for kind in KINDS:
        if kind.matches(source):
            return importlib.import_module(kind.module)
    accepted = "; ".join(kind.description for kind in KINDS)
    hint = " (no such file or folder)" if not Path(source).exists() else ""
    raise ConfigError(f"model {source!r}{hint}: not a kind of model vps_ros can load. "
                      f"Accepted: {accepted}")
