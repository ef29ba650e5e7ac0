"""INT8 post-training quantization of an exported network with OpenVINO's NNCF.

``quantization: int8`` (load option, the node's parameter, default ``none``; ``auto``:
int8 on backend openvino, fp32 on the others): a checkpoint's ONNX export
(:mod:`.segmenter`) is quantized once per input size by ``nncf.quantize`` (the
``openvino`` extra) and the OpenVINO IR is cached beside it in the export cache
(:mod:`.export_cache`, bounded with the exports). Calibration: frames of the synthetic
generator's ``train`` split at the network's input size (never the val or test
seeds the accuracy is checked on), through the network as the engine runs it (uint8
RGB in). Preset MIXED: weights symmetric per channel, activations asymmetric per
tensor, then NNCF's fast bias correction.

Kept in fp32 (``ignored_scope``): the mask heads, the k-means rounds' predictors and
the final factorised stride-2 mask logits. Their matmuls take computed, not constant,
operands (the queries' mask embeddings), on which NNCF's statistics fail, and with
them quantized most mask logits overflowed to inf; the backbone, pixel decoder and
transformer layers are quantized. On the val split the PQ of the INT8 network is then
within 0.1 point of fp32's (docs/benchmarks.md). INT8 pays where the CPU has int8 dot
products (AVX2 ``vpmaddubsw`` here; AVX-512 VNNI / AMX on recent Xeons).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from ...data.synthetic.dataset import SyntheticDataset
from .backends import EngineUnavailable
from .export_cache import touch
from .format import METADATA_KEY, read_onnx_info
from .openvino import import_openvino

log = logging.getLogger(__name__)

# auto: int8 on the engine that has it (openvino), fp32 on the others
QUANTIZATIONS = ("auto", "none", "int8")
CALIBRATION_FRAMES = 32
# NNCF node-name patterns of the layers kept in fp32 (see the module docstring).
FP32_LAYERS = (".*/final/.*", ".*/predictor/.*")
INT8_SUFFIX = "-int8.xml"


def calibration_images(size: tuple[int, int], count: int = CALIBRATION_FRAMES
                       ) -> list[np.ndarray]:
    """``count`` (1, H, W, 3) uint8 frames of the synthetic train split at ``size``: every
    other frame of sequences of 8, so that a calibration set spans many scenes."""
    per_sequence = 4
    sequences = -(-count // per_sequence)
    dataset = SyntheticDataset("train", sequences, 2 * per_sequence, *size)
    frames = [frame.image[None] for frame in dataset if frame.index % 2 == 0]
    return frames[:count]


def quantize_int8(onnx_path: Path, xml_path: Path, count: int = CALIBRATION_FRAMES) -> Path:
    """Write the INT8 OpenVINO IR of the exported network ``onnx_path`` to ``xml_path``
    (and its ``.bin``), the export's metadata kept; EngineUnavailable without NNCF."""
    ov = import_openvino()   # first: NNCF then finds no telemetry package and sends none
    try:
        import nncf
    except ImportError:
        raise EngineUnavailable("quantization int8 needs NNCF (the engines extra: pip "
                                "install nncf)") from None
    info = read_onnx_info(onnx_path)
    model = ov.Core().read_model(str(onnx_path))
    images = calibration_images(info.input_size, count)
    start = time.perf_counter()
    nncf.set_log_level(logging.WARNING)
    # NNCF's progress bars print to stdout: to stderr here (stdout is a command's output)
    with contextlib.redirect_stdout(sys.stderr):
        quantized = nncf.quantize(
            model, nncf.Dataset(images), preset=nncf.QuantizationPreset.MIXED,
            target_device=nncf.TargetDevice.CPU, subset_size=len(images),
            ignored_scope=nncf.IgnoredScope(patterns=list(FP32_LAYERS), validate=False))
    quantized.set_rt_info(info.to_json(), [METADATA_KEY])
    partial = xml_path.with_name(f"{xml_path.stem}.{os.getpid()}.partial.xml")
    try:
        ov.save_model(quantized, str(partial), compress_to_fp16=False)
        partial.with_suffix(".bin").replace(xml_path.with_suffix(".bin"))
        partial.replace(xml_path)
    finally:
        partial.unlink(missing_ok=True)
        partial.with_suffix(".bin").unlink(missing_ok=True)
    log.info("quantized %s to INT8 in %.0f s (%d calibration frames): %s", onnx_path.name,
             time.perf_counter() - start, len(images), xml_path)
    return xml_path


def cached_int8(onnx_path: Path) -> Path:
    """The INT8 IR of an export in the cache (quantized on first use), marked used."""
    xml_path = onnx_path.with_name(onnx_path.stem + INT8_SUFFIX)
    if xml_path.is_file() and xml_path.with_suffix(".bin").is_file():
        touch(xml_path)
        return xml_path
    log.info("quantizing %s to INT8 (NNCF, once per input size; about a minute)",
             onnx_path.name)
    quantize_int8(onnx_path, xml_path)
    touch(xml_path)
    return xml_path
