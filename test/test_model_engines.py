"""Exported networks on the inference engines: the round trip (torch vs engine outputs
on frames), the files' own metadata and its checks, the backend option, and the
fallback to torch when an engine cannot run. A small real network (random weights,
saved as a checkpoint) keeps the exports fast; figures of the shipped model are in
docs/deployment.md."""
import cv2
import dataclasses
import json
import logging
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from testkit.pipeline_helpers import LOOSE, synthetic_frames, write_small_checkpoint
from vps_ros.errors import CheckpointError, ConfigError
from vps_ros.model import Segmenter
from vps_ros.model.export import export
from vps_ros.model.engines.format import METADATA_KEY, read_onnx_info
from vps_ros.model.engines.segmenter import EngineSegmenter
from vps_ros.model.registry import LoadOptions, model_classes, open_segmenter
from vps_ros.pipeline import PipelineConfig, load_segmenter
from vps_ros.types import ClassTable

# An untrained network's mask logits stay within about +-0.7: keep every query and split
# masks at probability 0.5 so that frames have many segments.
THRESHOLDS = dataclasses.replace(LOOSE, mask_threshold=0.5)
# The largest difference measured between torch and an engine on these frames: 7.9e-7
# (float32 reordering, both engines, 2026-12-07); 1e-5 leaves room for other CPUs and is
# independent of the export's own TOLERANCE (a looser constant must not loosen this test).
ENGINE_ERROR = 1e-5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small checkpoint, its torch segmenter, and its ONNX and OpenVINO exports."""
    folder = tmp_path_factory.mktemp("engines")
    checkpoint = write_small_checkpoint(folder / "small.pt")
    torch_segmenter = open_segmenter(str(checkpoint), LoadOptions(postprocess=THRESHOLDS))
    files = {"onnx": folder / "small.onnx", "openvino": folder / "small.xml"}
    for fmt, path in files.items():
        export(torch_segmenter, fmt, path, "small.pt")
    return checkpoint, torch_segmenter, files


@pytest.mark.parametrize("fmt,backend", [("onnx", "onnxruntime"), ("onnx", "openvino"),
                                         ("openvino", "openvino")])
def test_exported_outputs_match_torch_on_frames(exported, fmt, backend):
    _, reference, files = exported
    engine = open_segmenter(str(files[fmt]), LoadOptions(backend=backend, postprocess=THRESHOLDS))
    assert isinstance(engine, EngineSegmenter) and engine.backend == backend
    assert engine.classes == reference.classes and engine.input_size == reference.input_size
    images = [frame.image for frame in synthetic_frames(3)]
    expected, got = reference.predict(np.stack(images)), engine.predict(np.stack(images))
    for name in ("class_logits", "mask_logits", "embeddings"):
        assert got[name].shape == expected[name].shape
        assert float((got[name] - expected[name]).abs().max()) <= ENGINE_ERROR, name
    for a, b in zip(reference.segment(images), engine.segment(images)):
        assert a.num_segments >= 2
        np.testing.assert_array_equal(a.segment_map, b.segment_map)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)


def test_the_exported_file_carries_classes_thresholds_and_input_size(exported):
    checkpoint, reference, files = exported
    info = read_onnx_info(files["onnx"])
    assert info.classes == ClassTable.builtin("synthetic")
    assert info.input_size == (64, 128) and info.num_queries == reference.net.config.num_queries
    assert info.postprocess == THRESHOLDS and info.source == "small.pt"
    # Loaded alone, without any checkpoint beside it.
    checkpoint.rename(checkpoint.with_suffix(".moved"))
    try:
        alone = open_segmenter(str(files["openvino"]), LoadOptions(backend="openvino"))
    finally:
        checkpoint.with_suffix(".moved").rename(checkpoint)
    assert alone.postprocess == THRESHOLDS and alone.input_size == (64, 128)


def test_the_classes_option_must_name_the_exported_table(exported):
    files = exported[2]
    synthetic = ClassTable.builtin("synthetic")
    for path in files.values():      # read from the metadata, whatever the backend
        assert model_classes(str(path)) == synthetic
        assert model_classes(str(path), LoadOptions(classes="synthetic")) == synthetic
        with pytest.raises(ConfigError, match=r"exported for class table 'synthetic', but "
                           r"classes asks for 'kitti-step'"):
            open_segmenter(str(path), LoadOptions(backend="openvino", classes="kitti_step"))


def _rewrite_metadata(source, target, change):
    model = onnx.load(str(source))
    entry = next(e for e in model.metadata_props if e.key == METADATA_KEY)
    data = json.loads(entry.value)
    change(data)
    entry.value = json.dumps(data)
    onnx.save(model, str(target))


def test_metadata_that_does_not_match_the_graph_is_refused(exported, tmp_path):
    files = exported[2]
    fewer = tmp_path / "fewer_classes.onnx"
    _rewrite_metadata(files["onnx"], fewer,
                      lambda data: data["classes"]["classes"].pop())
    with pytest.raises(CheckpointError, match=r"fewer_classes.onnx: class_logits has shape "
                       r"\(1, \d+, 11\), but its metadata .* 9 classes"):
        open_segmenter(str(fewer), LoadOptions(backend="onnxruntime"))
    other_size = tmp_path / "other_size.onnx"
    _rewrite_metadata(files["onnx"], other_size, lambda data: data.update(input_size=[96, 128]))
    with pytest.raises(CheckpointError, match="image has shape .*says .*96, 128"):
        open_segmenter(str(other_size), LoadOptions(backend="openvino"))
    bare = onnx.load(str(files["onnx"]))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(CheckpointError, match="bare.onnx: no 'vps_ros' metadata"):
        open_segmenter(str(tmp_path / "bare.onnx"), LoadOptions(backend="onnxruntime"))
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(CheckpointError, match="junk.onnx: not an ONNX file"):
        open_segmenter(str(tmp_path / "junk.onnx"), LoadOptions(backend="onnxruntime"))



@pytest.mark.parametrize("change,message", [
    (lambda data: data.update(version=99), r"exported with format version 99, this vps_ros "
                                           r"reads 1"),
    (lambda data: data.update(format="yolo"),
     r"metadata is not of format 'vps_ros.exported_segmenter'"),
    (lambda data: data.pop("input_size"), r"metadata incomplete \(KeyError: 'input_size'\)"),
    (lambda data: data.pop("num_queries"), r"metadata incomplete \(KeyError: 'num_queries'\)"),
    (lambda data: data.update(outputs=["class_logits"]), r"outputs \['class_logits'\], "
                                                        r"expected"),
])
def test_exported_metadata_of_another_version_format_or_incomplete_is_refused(
        exported, tmp_path, change, message):
    target = tmp_path / "changed.onnx"
    _rewrite_metadata(exported[2]["onnx"], target, change)
    with pytest.raises(CheckpointError, match=rf"changed.onnx: {message}"):
        open_segmenter(str(target), LoadOptions(backend="onnxruntime"))


def test_openvino_asked_for_on_a_cuda_device_is_refused(exported, monkeypatch):
    """A machine with a GPU (arranged): OpenVINO runs on the CPU only, so an exported
    file asked to run on cuda with it says which backend serves a GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ConfigError, match=r"small.onnx: backend openvino: device cuda: the "
                       r"OpenVINO engine runs on the CPU; on an NVIDIA GPU use backend "
                       r"onnxruntime"):
        open_segmenter(str(exported[2]["onnx"]), LoadOptions(backend="openvino", device="cuda"))

def test_an_exported_file_asks_for_its_engine_and_its_input_size(exported):
    files = exported[2]
    with pytest.raises(ConfigError, match="small.xml: an exported network runs on backend "
                       "openvino, not 'onnxruntime'"):
        open_segmenter(str(files["openvino"]), LoadOptions(backend="onnxruntime"))
    with pytest.raises(ConfigError, match="runs on backend openvino or onnxruntime, not 'torch'"):
        open_segmenter(str(files["onnx"]), LoadOptions(backend="torch"))
    with pytest.raises(ConfigError, match="exported for input 128x64, but .* ask for 256x128"):
        open_segmenter(str(files["onnx"]), LoadOptions(backend="onnxruntime",
                                                       input_size=(128, 256)))


def test_a_checkpoint_on_an_engine_is_exported_at_load_and_cached(exported, export_cache):
    checkpoint, reference, _ = exported
    config = PipelineConfig(model=str(checkpoint), backend="openvino", threads=1,
                            postprocess=THRESHOLDS)
    engine = load_segmenter(config)
    assert isinstance(engine, EngineSegmenter) and engine.backend == "openvino"
    assert engine.fallback == ""
    cached = list((export_cache / "exports").glob("small-*-64x128.onnx"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    again = load_segmenter(PipelineConfig(model=str(checkpoint), backend="onnxruntime",
                                          threads=1, postprocess=THRESHOLDS))
    assert again.backend == "onnxruntime" and cached[0].stat().st_mtime_ns == stamp
    image = synthetic_frames(1)[0].image
    np.testing.assert_array_equal(engine.segment([image])[0].segment_map,
                                  reference.segment([image])[0].segment_map)
    # a 4:3 camera, letterboxed at the input width 128, needs a 96x128 input: one more
    # export, and the same segments as torch at that size
    four_three = cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(engine.segment([four_three])[0].segment_map,
                                  reference.segment([four_three])[0].segment_map)
    assert len(list((export_cache / "exports").glob("small-*-96x128.onnx"))) == 1



def test_a_changed_checkpoint_at_the_same_path_is_exported_anew(tmp_path, export_cache):
    """The cache is keyed by the checkpoint's contents: new weights written over the old
    file get a new export, and the engine runs them (a stale network would not)."""
    checkpoint = tmp_path / "retrained.pt"
    image = synthetic_frames(1)[0].image
    segments = {}
    for seed in (0, 1):
        write_small_checkpoint(checkpoint, seed=seed)
        engine = load_segmenter(PipelineConfig(model=str(checkpoint), backend="onnxruntime",
                                               threads=1, postprocess=THRESHOLDS))
        reference = open_segmenter(str(checkpoint), LoadOptions(postprocess=THRESHOLDS))
        segments[seed] = reference.segment([image])[0].segment_map
        np.testing.assert_array_equal(engine.segment([image])[0].segment_map, segments[seed])
    assert not np.array_equal(segments[0], segments[1])      # the two networks differ
    assert len(list((export_cache / "exports").glob("retrained-*-64x128.onnx"))) == 2

def test_an_engine_that_is_not_installed_falls_back_to_torch(exported, monkeypatch, caplog):
    checkpoint = exported[0]
    monkeypatch.setitem(sys.modules, "openvino", None)          # import openvino fails
    with caplog.at_level(logging.WARNING, logger="vps_ros"):
        segmenter = load_segmenter(PipelineConfig(model=str(checkpoint), backend="openvino"))
    assert isinstance(segmenter, Segmenter) and segmenter.backend == "torch"
    assert segmenter.fallback == ("openvino: OpenVINO is not installed (the engines extra: "
                                  "pip install openvino)")
    assert "backend openvino unavailable" in caplog.text and "running on torch" in caplog.text
    with pytest.raises(ConfigError, match="small.xml: backend openvino: OpenVINO is not "
                       "installed"):
        open_segmenter(str(exported[2]["openvino"]), LoadOptions(backend="openvino"))


def test_cuda_without_a_gpu_runs_the_engine_on_the_cpu(exported, caplog, monkeypatch):
    """``device: cuda`` on a machine without a GPU runs on the CPU, with a warning, as
    the torch backend does, and the engine asked for still runs. No GPU is arranged (the
    suite also runs on GPU machines)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="vps_ros"):
        segmenter = load_segmenter(PipelineConfig(model=str(exported[0]),
                                                  backend="onnxruntime", device="cuda"))
    assert isinstance(segmenter, EngineSegmenter)
    assert (segmenter.backend, segmenter.device, segmenter.fallback) == \
        ("onnxruntime", "cpu", "")
    assert "no CUDA device is available: running on the CPU" in caplog.text
    exported_file = open_segmenter(str(exported[2]["onnx"]),
                                   LoadOptions(device="cuda", backend="openvino"))
    assert exported_file.device == "cpu"


def test_onnxruntime_without_gpu_providers_cannot_serve_cuda(monkeypatch):
    """An ONNX Runtime with the CPU provider only (arranged: a GPU build has more)."""
    import onnxruntime
    from vps_ros.model.engines import onnxruntime as ort_engine
    from vps_ros.model.engines.backends import EngineUnavailable
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CPUExecutionProvider"])
    with pytest.raises(EngineUnavailable, match="device cuda: this ONNX Runtime has no GPU "
                       "execution provider"):
        ort_engine.check_available("cuda")



def test_onnxruntime_with_gpu_providers_serves_cuda_tensorrt_first(monkeypatch, tmp_path):
    """The other way: a GPU build of ONNX Runtime (its provider list arranged) gets
    TensorRT, then CUDA on the device asked for, then the CPU."""
    import onnxruntime
    from vps_ros.model.engines import onnxruntime as ort_engine
    monkeypatch.setenv("VPS_ROS_CACHE", str(tmp_path))
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    chosen = ort_engine.providers("cuda:1")
    assert [entry if isinstance(entry, str) else entry[0] for entry in chosen] == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert chosen[0][1]["device_id"] == 1 and chosen[1][1] == {"device_id": 1}
    assert ort_engine.providers("cpu") == ["CPUExecutionProvider"]

def test_a_gpu_provider_that_falls_back_to_the_cpu_is_unavailable(exported, monkeypatch):
    """ONNX Runtime replaces a GPU provider that cannot start by the CPU without raising;
    that must count as the engine being unavailable, not as running on the GPU. The
    provider list is what check_available would give on a GPU build."""
    from vps_ros.model.engines import onnxruntime as ort_engine
    from vps_ros.model.engines.backends import EngineUnavailable
    monkeypatch.setattr(ort_engine, "providers", lambda device: [
        ("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"])
    with pytest.warns(UserWarning), \
            pytest.raises(EngineUnavailable, match="CUDAExecutionProvider did not start"):
        ort_engine.open_session(exported[2]["onnx"], "cuda", 1)


def test_an_export_that_fails_at_run_time_runs_that_size_on_torch(exported, monkeypatch,
                                                                   caplog):
    """A new camera aspect needs a new export on its first frame; if that fails, the
    frame and every later one of that size run on torch, the export is not retried,
    and the reason is in ``fallback``."""
    from vps_ros.model.engines import segmenter as engines
    checkpoint, reference, _ = exported
    segmenter = load_segmenter(PipelineConfig(model=str(checkpoint), backend="openvino",
                                              threads=1, postprocess=THRESHOLDS))
    attempts = []

    def full_disk(net, source, size, limits, in_use):
        attempts.append(size)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(engines, "_cached_export", full_disk)
    image = cv2.resize(synthetic_frames(1)[0].image, (160, 120), interpolation=cv2.INTER_AREA)
    with caplog.at_level(logging.WARNING, logger="vps_ros"):
        for _ in range(2):
            np.testing.assert_array_equal(segmenter.segment([image])[0].segment_map,
                                          reference.segment([image])[0].segment_map)
    assert attempts == [(96, 128)]
    assert segmenter.fallback == ("openvino at 128x96: OSError: [Errno 28] No space left "
                                  "on device")
    assert "input 128x96 runs on torch" in caplog.text


def test_openvino_runs_with_its_telemetry_off(exported):
    """`import openvino` alone would initialise its telemetry and send an event; through
    vps_ros, OpenVINO's tools get their no-op stub. A fresh process: nothing imported
    OpenVINO before."""
    script = ("import sys; from vps_ros.model.registry import LoadOptions, open_segmenter; "
              f"open_segmenter({str(exported[2]['openvino'])!r}, LoadOptions(backend='openvino'))"
              "; import openvino.tools.ovc.telemetry_utils as t; "
              "print(t.tm.__name__, sys.modules['openvino_telemetry'])")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["openvino.tools.ovc.telemetry_stub", "None"]


def test_backend_is_validated():
    with pytest.raises(ConfigError, match="backend: 'tensorrt' is not one of"):
        from vps_ros.config import from_mapping
        from_mapping(PipelineConfig, {"backend": "tensorrt"}, "perception.yaml")


def test_the_default_backend_gives_the_shipped_models_segments():
    """The default backend (OpenVINO) against torch, shipped model, test-split frames:
    the same segments (the export's logits differ by ~1e-4 at most)."""
    from vps_ros.data.synthetic.dataset import SyntheticDataset
    from vps_ros.resources import model_path
    shipped = str(model_path("default.pt"))
    default = load_segmenter(PipelineConfig(model=shipped, threads=1))
    assert PipelineConfig().backend == "openvino" and default.backend == "openvino"
    reference = open_segmenter(shipped, LoadOptions(backend="torch"))
    images = [frame.image for frame in SyntheticDataset("test", 4, 1)]
    for a, b in zip(reference.segment(images), default.segment(images)):
        assert a.num_segments >= 5
        np.testing.assert_array_equal(a.segment_map, b.segment_map)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
