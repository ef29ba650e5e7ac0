"""Exported segmenter networks: an ONNX file (or OpenVINO IR) that loads on its own.

The file's format (what it holds and how it describes itself) is
:mod:`vps_ros.model.engines.format`; what runs the file is an engine of
:mod:`vps_ros.model.engines`.

The export is checked against torch before it is written: the largest absolute
difference of any output over a few frames must stay within :data:`TOLERANCE`.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .engines.format import METADATA_KEY, OUTPUTS, ExportInfo, read_onnx_info
from .engines.openvino import import_openvino
from .mask_segmenter import MaskSegmenter
from .segmenter import Segmenter

OPSET = 18
# Largest absolute difference of any output (logits, embeddings) from torch's that an
# export may show. fp32 engines reorder sums (fused kernels, other matmul blocking):
# seen up to 1e-4 on the shipped model; a wrong graph is off by whole units.
TOLERANCE = 1e-3


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


def export_openvino(onnx_path: str | Path, xml_path: str | Path) -> ExportInfo:
    """Convert an exported ONNX file to OpenVINO IR (``.xml`` + ``.bin``), metadata kept.

    Read with OpenVINO's ONNX frontend (``Core.read_model``), not ``convert_model``,
    with its telemetry off (:mod:`vps_ros.model.engines.openvino`).
    """
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


def compare(reference: MaskSegmenter, exported: MaskSegmenter, images: Sequence[np.ndarray]
            ) -> dict[str, float]:
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
