"""Exported segmenter networks: an ONNX file (or OpenVINO IR) that loads on its own.

The exported graph takes what :meth:`MaskSegmenter.predict` gets, one RGB uint8 image
(1, H, W, 3) at a fixed input size, and returns the network's ``class_logits``,
``mask_logits`` and ``embeddings``; normalisation and layout are inside the graph. The
file carries its own description (:class:`ExportInfo`: class table, post-processing
thresholds, input size, output names) as ONNX metadata (key ``vps_ros``) or as the IR's
runtime info, so an exported file needs no checkpoint beside it. What runs the file is
an engine of :mod:`vps_ros.model.engines`.

The export is checked against torch before it is written: the largest absolute
difference of any output over a few frames must stay within :data:`TOLERANCE`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..config import from_mapping, to_mapping
from ..errors import CheckpointError, VpsRosError
from ..types import ClassTable
from .config import PostprocessConfig
from .segmenter import Segmenter

FORMAT = "vps_ros.exported_segmenter"
VERSION = 1
METADATA_KEY = "vps_ros"
OUTPUTS = ("class_logits", "mask_logits", "embeddings")
OPSET = 18
# Largest absolute difference of any output (logits, embeddings) from torch's that an
# export may show. fp32 engines reorder sums (fused kernels, other matmul blocking):
# seen up to 1e-4 on the shipped model; a wrong graph is off by whole units.
TOLERANCE = 1e-3


@dataclass(frozen=True)
class ExportInfo:
    """What an exported file says about itself."""

    classes: ClassTable
    postprocess: PostprocessConfig
    input_size: tuple[int, int]       # (height, width) of its one input image
    num_queries: int
    source: str                       # the checkpoint it was exported from

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "version": VERSION,
                           "classes": self.classes.to_dict(),
                           "postprocess": to_mapping(self.postprocess),
                           "input_size": list(self.input_size), "num_queries": self.num_queries,
                           "outputs": list(OUTPUTS), "source": self.source})

    @classmethod
    def from_json(cls, text: str | None, where: str) -> "ExportInfo":
        """Parse and check the metadata of the file ``where``."""
        if not text:
            raise CheckpointError(f"{where}: no {METADATA_KEY!r} metadata: not a network "
                                  "exported by `vps-ros export`")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{where}: {METADATA_KEY!r} metadata is not JSON: {exc}") \
                from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"{where}: metadata is not of format {FORMAT!r}")
        if data.get("version") != VERSION:
            raise CheckpointError(f"{where}: exported with format version "
                                  f"{data.get('version')!r}, this vps_ros reads {VERSION}")
        if data.get("outputs") != list(OUTPUTS):
            raise CheckpointError(f"{where}: outputs {data.get('outputs')!r}, expected "
                                  f"{list(OUTPUTS)}")
        try:
            classes = ClassTable.from_dict(data["classes"], f"{where}: classes")
            postprocess = from_mapping(PostprocessConfig, data["postprocess"],
                                       f"{where}: postprocess")
            height, width = (int(v) for v in data["input_size"])
            return cls(classes, postprocess, (height, width), int(data["num_queries"]),
                       str(data.get("source", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: metadata incomplete ({type(exc).__name__}: "
                                  f"{exc})") from None
        except VpsRosError as exc:
            raise CheckpointError(str(exc)) from None

    def check_outputs(self, shapes: dict[str, Sequence[int | str]], where: str) -> None:
        """The graph's declared inputs/outputs must be those the metadata describes."""
        height, width = self.input_size
        expected = {"image": (1, height, width, 3),
                    "class_logits": (1, self.num_queries, len(self.classes) + 1)}
        for name in ("image",) + OUTPUTS:
            if name not in shapes:
                raise CheckpointError(f"{where}: the graph has no {name!r} "
                                      f"{'input' if name == 'image' else 'output'} "
                                      f"(has {', '.join(sorted(shapes))})")
        for name, shape in expected.items():
            if tuple(shapes[name]) != shape:
                raise CheckpointError(
                    f"{where}: {name} has shape {tuple(shapes[name])}, but its metadata "
                    f"(class table {self.classes.name!r} of {len(self.classes)} classes, "
                    f"{self.num_queries} queries, input {height}x{width}) says {shape}")


class _Exportable(nn.Module):
    """The network as exported: uint8 (1, H, W, 3) RGB in, the three outputs out."""

    def __init__(self, segmenter: Segmenter) -> None:
        super().__init__()
        self.net = segmenter.net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net(image.permute(0, 3, 1, 2).float())
        return tuple(out[name] for name in OUTPUTS)


def export_onnx(segmenter: Segmenter, path: str | Path, source: str = "",
                size: tuple[int, int] | None = None) -> ExportInfo:
    """Write ``segmenter``'s network as ONNX with its metadata, for input ``size``
    (height, width; default: the segmenter's input size)."""
    import onnx  # the engines extra

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = size or segmenter.input_size
    info = ExportInfo(segmenter.classes, segmenter.postprocess, (height, width),
                      segmenter.net.config.num_queries, source)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")  # concurrent exports
    # With gradients on, torch's transformer layers take their plain path (the fused
    # inference kernel, _transformer_encoder_layer_fwd, has no ONNX form).
    try:
        with torch.inference_mode(False), torch.enable_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shapes are fixed
            torch.onnx.export(_Exportable(segmenter).eval(),
                              (torch.zeros(1, height, width, 3, dtype=torch.uint8),),
                              str(partial), input_names=["image"], output_names=list(OUTPUTS),
                              opset_version=OPSET, dynamo=False)
        model = onnx.load(str(partial))
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, info.to_json()
        onnx.save(model, str(partial))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)   # what a failed export left
    return info


def read_onnx_info(path: str | Path) -> ExportInfo:
    """The metadata of an exported ONNX file, checked against its graph."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: exported model file not found")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's errors have no common base
        raise CheckpointError(f"{path}: not an ONNX file ({type(exc).__name__})") from None
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    info = ExportInfo.from_json(metadata.get(METADATA_KEY), str(path))
    info.check_outputs({value.name: [d.dim_value or d.dim_param for d in
                                     value.type.tensor_type.shape.dim]
                        for value in list(model.graph.input) + list(model.graph.output)},
                       str(path))
    return info


def export_openvino(onnx_path: str | Path, xml_path: str | Path) -> ExportInfo:
    """Convert an exported ONNX file to OpenVINO IR (``.xml`` + ``.bin``), metadata kept.

    Read with OpenVINO's ONNX frontend (``Core.read_model``), not ``convert_model``,
    with its telemetry off (:mod:`vps_ros.model.engines.openvino`).
    """
    from .engines.openvino import import_openvino
    ov = import_openvino()  # the engines extra

    info = read_onnx_info(onnx_path)
    model = ov.Core().read_model(str(onnx_path))
    model.set_rt_info(info.to_json(), [METADATA_KEY])
    xml_path = Path(xml_path)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    return info


def export(segmenter: Segmenter, fmt: str, out: str | Path, source: str = "") -> ExportInfo:
    """Export ``segmenter`` as ``fmt`` ("onnx" or "openvino") to ``out``."""
    out = Path(out)
    if fmt == "onnx":
        return export_onnx(segmenter, out, source)
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = Path(folder) / "model.onnx"
        export_onnx(segmenter, onnx_path, source)
        return export_openvino(onnx_path, out)


FORMATS = {"onnx": ".onnx", "openvino": ".xml"}


def compare(reference: Segmenter, exported, images: Sequence[np.ndarray]) -> dict[str, float]:
    """Largest absolute difference of each output between two segmenters on ``images``
    (RGB uint8 at the input size)."""
    diffs = {name: 0.0 for name in OUTPUTS}
    for image in images:
        a, b = reference.predict(image[None]), exported.predict(image[None])
        for name in OUTPUTS:
            diffs[name] = max(diffs[name], float((a[name].float() - b[name].float()).abs().max()))
    return diffs


def copy_export(source: Path, target: Path) -> None:
    """Copy an exported file (an IR's ``.bin`` with its ``.xml``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    if source.suffix == ".xml":
        shutil.copyfile(source.with_suffix(".bin"), target.with_suffix(".bin"))
