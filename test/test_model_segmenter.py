"""Segmenter.segment: batches of images of any size, outputs mapped back, bad images."""
import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from testkit.scenes import CLASSES, SMALL
from vps_ros.errors import DataError
from vps_ros.model import PostprocessConfig, Segmenter
from vps_ros.model.network import KMaXNet

# Keep every confident-enough query, so an untrained network still yields segments.
LOOSE = PostprocessConfig(class_threshold=0.0, overlap_threshold=0.0, min_area_thing=0,
                          min_area_stuff=0)


@pytest.fixture(scope="module")
def segmenter():
    torch.manual_seed(0)
    return Segmenter(KMaXNet(SMALL, len(CLASSES)), CLASSES, postprocess=LOOSE)


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_a_batch_of_images_of_different_sizes_maps_back_to_each_size(segmenter):
    images = [_image(64, 128), _image(120, 90, 1), _image(300, 700, 2)]
    results = segmenter.segment(images)
    assert [r.image_size for r in results] == [(64, 128), (120, 90), (300, 700)]
    for seg in results:
        assert seg.num_segments > 0
        assert seg.segment_map.dtype == np.int32
        assert seg.segment_map.max() == seg.num_segments - 1
        assert seg.areas.sum() == (seg.segment_map >= 0).sum()
        assert seg.areas.tolist() == [int((seg.segment_map == i).sum())
                                      for i in range(seg.num_segments)]
        for i, (x0, y0, x1, y1) in enumerate(seg.boxes.astype(int)):
            ys, xs = np.nonzero(seg.segment_map == i)
            assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        np.testing.assert_allclose(np.linalg.norm(seg.embeddings, axis=1), 1.0, atol=1e-5)
        assert seg.embeddings.shape[1] == segmenter.embed_dim
        assert seg.is_thing.tolist() == CLASSES.is_thing_lut[seg.class_ids].tolist()


def test_without_mapping_back_the_outputs_stay_at_model_resolution(segmenter):
    images = [_image(300, 700), _image(30, 40)]
    results = segmenter.segment(images, at_input_resolution=False)
    # letterbox at the input width 128: 300x700 * 128/700 = 54.9x128 and 30x40 * 3.2 =
    # 96x128, in one 96x128 input (the taller one's height, a multiple of 32)
    assert [r.image_size for r in results] == [(55, 128), (96, 128)]
    segmenter.resize = "stretch"
    try:
        results = segmenter.segment(images, at_input_resolution=False)
    finally:
        segmenter.resize = "letterbox"
    assert [r.image_size for r in results] == [segmenter.input_size] * 2


def test_each_image_is_segmented_independently_of_its_batch(segmenter):
    alone = segmenter.segment([_image(64, 128, 5)])[0]
    batched = segmenter.segment([_image(64, 128, 6), _image(64, 128, 5)])[1]
    assert np.array_equal(alone.segment_map, batched.segment_map)


def test_postprocess_thresholds_can_change_between_calls(segmenter):
    image = [_image(64, 128, 3)]
    many = segmenter.segment(image)[0].num_segments
    segmenter.postprocess = PostprocessConfig(class_threshold=1.0)
    try:
        assert segmenter.segment(image)[0].num_segments == 0 < many
    finally:
        segmenter.postprocess = LOOSE


def test_an_empty_batch_gives_no_results(segmenter):
    assert segmenter.segment([]) == []


def test_a_very_wide_image_gets_at_least_one_row_of_32_in_the_network():
    """Letterboxed at the input width 128, a 1x600 strip would be 0.2 rows high."""
    torch.manual_seed(0)
    letterbox = Segmenter(KMaXNet(SMALL, len(CLASSES)), CLASSES, postprocess=LOOSE)
    assert letterbox.network_size([(1, 600)]) == (32, 128)
    result = letterbox.segment([_image(1, 600)])[0]
    assert result.image_size == (1, 600) and result.segment_map.shape == (1, 600)


@pytest.mark.parametrize("image, message", [
    (np.zeros((64, 128), np.uint8), r"image 1 of the batch: expected an \(H, W, 3\) RGB array, "
                                    r"got shape \(64, 128\)"),
    (np.zeros((64, 128, 4), np.uint8), r"got shape \(64, 128, 4\)"),
    (np.zeros((0, 128, 3), np.uint8), r"image 1 of the batch is empty"),
    (np.zeros((64, 128, 3), np.float32), r"image 1 of the batch: expected uint8 pixels"),
])
def test_bad_images_raise_a_clear_error(segmenter, image, message):
    with pytest.raises(DataError, match=message):
        segmenter.segment([_image(64, 128), image])


@pytest.mark.slow
def test_the_compiled_network_gives_the_segments_of_the_uncompiled_one():
    torch.manual_seed(0)
    net = KMaXNet(SMALL, len(CLASSES))
    eager = Segmenter(net, CLASSES, postprocess=LOOSE)
    compiled = Segmenter(KMaXNet(SMALL, len(CLASSES)), CLASSES, postprocess=LOOSE,
                         compile=True)
    compiled.net.load_state_dict(eager.net.state_dict())
    compiled.warm_up()
    assert compiled.compiled
    graphs = counters["stats"]["unique_graphs"]
    images = [_image(64, 128, 7), _image(90, 200, 8), _image(64, 128, 9)]
    for ours, theirs in zip(compiled.segment(images), eager.segment(images)):
        # Fused kernels round differently: allow the odd pixel on a mask's edge.
        assert (ours.segment_map != theirs.segment_map).mean() < 0.01
        assert ours.class_ids.tolist() == theirs.class_ids.tolist()
        np.testing.assert_allclose(ours.embeddings, theirs.embeddings, atol=1e-4)
    # Batches made other ways (another batch stride, an inference tensor) reuse the
    # compiled graph: a recompilation would stall a running node for seconds.
    odd = torch.from_numpy(_image(64, 128)).permute(2, 0, 1)[None].float()
    with torch.inference_mode():
        made_in_inference_mode = torch.rand(2, 3, 64, 128) * 255
    for batch in (odd, made_in_inference_mode):
        compiled.run_network(batch)
    assert counters["stats"]["unique_graphs"] == graphs


def test_a_failed_compilation_is_logged_and_the_network_runs_uncompiled(caplog):
    torch.manual_seed(0)
    segmenter = Segmenter(KMaXNet(SMALL, len(CLASSES)), CLASSES, postprocess=LOOSE,
                          compile=True)

    def no_compiler(_):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore lines")
    segmenter._compiled = no_compiler
    expected = Segmenter(KMaXNet(SMALL, len(CLASSES)), CLASSES, postprocess=LOOSE)
    expected.net.load_state_dict(segmenter.net.state_dict())
    result = segmenter.segment([_image(64, 128, 4)])[0]
    assert not segmenter.compiled
    assert "running it uncompiled: RuntimeError: InvalidCxxCompiler" in caplog.text
    assert np.array_equal(result.segment_map,
                          expected.segment([_image(64, 128, 4)])[0].segment_map)
