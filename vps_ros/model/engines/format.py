"""The exported file's format: what :mod:`vps_ros.model.export` writes and every engine
reads.

An exported graph takes what :meth:`MaskSegmenter.predict` gets, one RGB uint8 image
(1, H, W, 3) at a fixed input size, and returns the network's :data:`OUTPUTS`;
normalisation and layout are inside the graph. The file carries its own description
(:class:`ExportInfo`: class table, post-processing thresholds, input size, output names)
as ONNX metadata (key :data:`METADATA_KEY`) or as an OpenVINO IR's runtime info, so an
exported file needs no checkpoint beside it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ...config import from_mapping, to_mapping
from ...errors import CheckpointError, VpsRosError
from ...types import ClassTable
from ..config import PostprocessConfig

FORMAT = "vps_ros.exported_segmenter"
VERSION = 1
METADATA_KEY = "vps_ros"
OUTPUTS = ("class_logits", "mask_logits", "embeddings")


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
