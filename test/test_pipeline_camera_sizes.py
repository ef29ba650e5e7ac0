"""Camera-sized outputs are the model-sized ones mapped back: the label map exactly (nearest
neighbour), areas counted on that map, boxes within a pixel of the scaled model boxes."""
import cv2
import numpy as np
import pytest

from testkit.pipeline_helpers import LOOSE, synthetic_frames, write_small_checkpoint
from vps_ros.pipeline import Pipeline, PipelineConfig, load_segmenter


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    checkpoint = write_small_checkpoint(tmp_path_factory.mktemp("model") / "small.pt")
    return load_segmenter(PipelineConfig(model=str(checkpoint), postprocess=LOOSE, threads=1))


@pytest.mark.parametrize("camera", [(180, 320), (240, 320), (157, 263)])  # 16:9, 4:3, odd
def test_camera_outputs_equal_model_outputs_mapped_back(segmenter, camera):
    frames = [cv2.resize(f.image, camera[::-1], interpolation=cv2.INTER_LINEAR)
              for f in synthetic_frames(4)]
    full, small = (Pipeline(segmenter, output_scale="input"),
                   Pipeline(segmenter, output_scale="model"))
    things_seen = 0
    for t, image in enumerate(frames):
        big, model = full.step(image, t), small.step(image, t)
        assert big.panoptic.shape == camera
        np.testing.assert_array_equal(big.panoptic, cv2.resize(
            model.panoptic, camera[::-1], interpolation=cv2.INTER_NEAREST))
        sy, sx = camera[0] / model.panoptic.shape[0], camera[1] / model.panoptic.shape[1]
        assert [o.track_id for o in big.objects] == [o.track_id for o in model.objects]
        for obj, ref in zip(big.objects, model.objects):
            scaled = np.array(ref.box) * [sx, sy, sx, sy]
            assert np.abs(np.array(obj.box) - scaled).max() <= 1.0
            np.testing.assert_allclose(obj.velocity, np.array(ref.velocity) * [sx, sy])
            if not obj.is_thing or obj.frames_since_seen:
                continue
            things_seen += 1
            ys, xs = np.nonzero(big.panoptic == obj.class_id * big.label_divisor + obj.track_id)
            assert obj.area == len(xs)
            assert obj.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert len(big.track_ids) == big.segments.num_segments
    assert things_seen > 0


@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_the_resize_parameter_reaches_every_backend(tmp_path, backend):
    """A 4:3 camera: letterbox keeps the width (128) and grows the input to 96 rows;
    stretch keeps the model's 64x128."""
    checkpoint = write_small_checkpoint(tmp_path / "small.pt")
    for resize, expected in (("letterbox", (96, 128)), ("stretch", (64, 128))):
        segmenter = load_segmenter(PipelineConfig(model=str(checkpoint), backend=backend,
                                                  threads=1, resize=resize))
        assert (segmenter.backend, segmenter.resize) == (backend, resize)
        assert segmenter.network_size([(120, 160)]) == expected
