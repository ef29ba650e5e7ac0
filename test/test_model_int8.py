"""INT8 engine (issue 29): the shipped checkpoint quantized by OpenVINO NNCF loads
through the registry, is cached, and gives segments close to the fp32 network's."""
import numpy as np
import pytest

from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.errors import ConfigError
from vps_ros.metrics import panoptic_quality
from vps_ros.model.registry import LoadOptions, open_segmenter
from vps_ros.pipeline import DEFAULT_MODEL
from vps_ros.resources import model_path
from vps_ros.train.validate import segments_to_panoptic

SIZE = (64, 128)   # a small network input: quantization and inference take seconds


def test_an_int8_engine_loads_and_segments_close_to_fp32(tmp_path, monkeypatch):
    monkeypatch.setenv("VPS_ROS_CACHE", str(tmp_path))
    source = str(model_path(DEFAULT_MODEL))
    fp32 = open_segmenter(source, LoadOptions(input_size=SIZE, threads=1))
    int8 = open_segmenter(source, LoadOptions(input_size=SIZE, threads=1, backend="openvino",
                                              quantization="int8"))
    assert int8.backend == "openvino" and not int8.fallback
    cached = sorted(p.name for p in (tmp_path / "exports").iterdir())
    assert any(name.endswith("-int8.xml") for name in cached), cached
    assert any(name.endswith("-int8.bin") for name in cached), cached
    data = SyntheticDataset("val", 2, 2, *SIZE)
    pairs = []
    for frame in data:
        expected = segments_to_panoptic(fp32.segment([frame.image])[0], data.label_divisor,
                                        data.classes.void_id)
        got = segments_to_panoptic(int8.segment([frame.image])[0], data.label_divisor,
                                   data.classes.void_id)
        pairs.append((expected, got))
    # The fp32 segments as ground truth: INT8 must find nearly the same ones.
    agreement = panoptic_quality(pairs, data.classes, data.label_divisor)
    assert agreement["PQ"] > 0.85, agreement


def test_int8_on_another_backend_is_a_clear_error():
    with pytest.raises(ConfigError, match="quantization int8 runs on backend openvino"):
        open_segmenter(str(model_path(DEFAULT_MODEL)),
                       LoadOptions(input_size=SIZE, backend="onnxruntime", quantization="int8"))
