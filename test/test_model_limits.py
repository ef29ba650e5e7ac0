"""Bounds on what one frame may cost (docs/reliability.md, Bounds): the letterboxed
network input is capped in aspect and pixels, a frame beyond the maximum input size is
refused before anything is resized. Expected sizes are worked out by hand in the
comments; nothing here allocates more than a few MB (the sizes asked for are what is
checked, through the network's real call)."""
import time

import numpy as np
import pytest

from testkit.pipeline_helpers import write_small_checkpoint
from vps_ros.config import from_mapping
from vps_ros.errors import ConfigError
from vps_ros.model import MaskSegmenter
from vps_ros.model.limits import FrameTooLarge, InputLimits
from vps_ros.pipeline import Pipeline, PipelineConfig, load_segmenter


class _Bare:
    """MaskSegmenter's network_size rule on a bare object at a 256x512 input."""
    input_size = (256, 512)
    resize = "letterbox"

    def __init__(self, limits=InputLimits()):
        self.limits = limits


@pytest.mark.parametrize("cameras, limits, expected", [
    # 8000 high, 2 wide at width 512: 8000 * 256 = 2048000 rows unbounded; the aspect
    # cap is 4 * 512 = 2048 (pixels: 4194304 / 512 = 8192 rows, not the tighter one)
    ([(8000, 2)], InputLimits(), (2048, 512)),
    ([(20000, 4)], InputLimits(), (2048, 512)),
    # the pixel cap: 524288 / 512 = 1024 rows
    ([(8000, 2)], InputLimits(max_network_pixels=524288), (1024, 512)),
    # an aspect of 1.5: 768 rows; 1000 / 1300 * 512 = 393.8 -> 416 is within it
    ([(8000, 2), (1000, 1300)], InputLimits(max_aspect=1.5), (768, 512)),
    ([(1000, 1300)], InputLimits(max_aspect=1.5), (416, 512)),
    # never below the model's own input: 1024 / 512 = 2 rows -> 256
    ([(8000, 2)], InputLimits(max_network_pixels=1024), (256, 512)),
    ([(1080, 1920)], InputLimits(), (288, 512)),     # ordinary cameras are untouched
])
def test_the_letterboxed_input_is_capped_in_aspect_and_pixels(cameras, limits, expected):
    assert MaskSegmenter.network_size(_Bare(limits), cameras) == expected


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small real network (64x128 input) on torch."""
    checkpoint = write_small_checkpoint(tmp_path_factory.mktemp("limits") / "small.pt")
    return checkpoint, load_segmenter(PipelineConfig(model=str(checkpoint), backend="torch",
                                                     threads=1))


def _spied(segmenter):
    """The batch shapes the network is called with (the real call still runs)."""
    shapes, predict = [], segmenter.predict

    def spy(batch):
        shapes.append(batch.shape)
        return predict(batch)
    segmenter.predict = spy
    return shapes


def test_a_tall_thin_frame_runs_at_the_capped_input_quickly(small):
    _, segmenter = small
    shapes = _spied(segmenter)
    try:
        start = time.perf_counter()
        frame = Pipeline(segmenter).step(np.full((8000, 2, 3), 90, np.uint8), 0)
        elapsed = time.perf_counter() - start
    finally:
        del segmenter.predict
    # width 128, aspect cap 4: 512 rows (unbounded: 8000 * 64 = 512000)
    assert shapes == [(1, 512, 128, 3)]
    assert frame.panoptic.shape == (8000, 2)
    assert elapsed < 30   # a loose ceiling; unbounded it allocates GBs and is killed


def test_a_frame_beyond_the_maximum_input_size_is_refused_before_any_resize(small):
    _, segmenter = small
    shapes = _spied(segmenter)
    try:
        with pytest.raises(FrameTooLarge, match=r"image 0 of the batch: frame 4x20000 is "
                           r"beyond the maximum input size 8192x8192"):
            Pipeline(segmenter).step(np.zeros((20000, 4, 3), np.uint8), 0)
    finally:
        del segmenter.predict
    assert shapes == []


def test_the_limits_of_a_params_file_reach_the_segmenter(small, tmp_path):
    checkpoint, _ = small
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    backend: torch\n"
                      f"    model: {checkpoint}\n"
                      "    limits: {max_image_pixels: 10000, max_aspect: 2.0}\n")
    config = PipelineConfig.from_params_file(params)
    segmenter = load_segmenter(config)
    assert segmenter.limits == InputLimits(max_image_pixels=10000, max_aspect=2.0)
    # 2 * 128 = 256 rows
    assert segmenter.network_size([(8000, 2)]) == (256, 128)
    with pytest.raises(FrameTooLarge, match=r"frame 101x100 has 10100 pixels, beyond "
                       r"limits.max_image_pixels 10000"):
        segmenter.segment([np.zeros((100, 101, 3), np.uint8)])
    segmenter.segment([np.zeros((100, 100, 3), np.uint8)])   # at the bound: taken


def test_limits_out_of_range_are_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"params.limits.max_aspect: 0.5 is out of range"):
        from_mapping(PipelineConfig, {"limits": {"max_aspect": 0.5}}, "params")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) max_heigth"):
        from_mapping(PipelineConfig, {"limits": {"max_heigth": 5}}, "params")
