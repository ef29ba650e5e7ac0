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

from ..errors import ConfigError
from ..types import ClassTable
from .config import PostprocessConfig
from .hub import is_hub_id
from .mask_segmenter import MaskSegmenter


@dataclass(frozen=True)
class LoadOptions:
    """Settings every loader honours."""

    device: str = "cpu"
    input_size: tuple[int, int] | None = None  # (height, width); None: the model's own
    postprocess: PostprocessConfig | None = None  # None: the model's own thresholds
    compile: bool = False
    backend: str = "torch"  # torch, or an engine of vps_ros.model.engines
    classes: str = ""  # class table (config/classes_<name>.yaml or a YAML path); "": the model's
    resize: str = "letterbox"  # how images are fitted into the input (model/resizing.py)


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
    ModelKind("onnx", lambda source: source.endswith(".onnx"), "vps_ros.model.engines",
              "a network exported by `vps-ros export` (.onnx; backend openvino or "
              "onnxruntime)"),
    ModelKind("openvino", lambda source: source.endswith(".xml"), "vps_ros.model.engines",
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
    """The segmenter that ``source`` names, loaded with ``options``."""
    return _module_of(source).load(source, options)


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
