import numpy as np
import pytest

from vps_ros.errors import CheckpointError, ConfigError
from vps_ros.model import MaskSegmenter, Segmenter
from vps_ros.model.registry import LoadOptions, model_classes, open_segmenter
from vps_ros.resources import model_path


def test_a_checkpoint_opens_as_the_kmax_backend_with_the_asked_input_size():
    segmenter = open_segmenter(str(model_path("default.pt")), LoadOptions(input_size=(128, 256)))
    assert isinstance(segmenter, Segmenter) and isinstance(segmenter, MaskSegmenter)
    assert segmenter.input_size == (128, 256)
    image = np.random.default_rng(0).integers(0, 255, (96, 200, 3), dtype=np.uint8)
    assert segmenter.segment([image])[0].segment_map.shape == (96, 200)


@pytest.mark.parametrize("source", ["weights.bin", "nothere/"])
def test_a_source_of_no_known_kind_lists_the_accepted_kinds(source):
    with pytest.raises(ConfigError, match=r"not a kind of model vps_ros can load.*checkpoint "
                                          r"file \(\.pt\)"):
        open_segmenter(source)


def test_a_checkpoint_honours_the_classes_option_it_was_trained_for():
    default = str(model_path("default.pt"))
    assert model_classes(default, LoadOptions(classes="synthetic")).name == "synthetic"
    with pytest.raises(CheckpointError, match=r"trained for class table .*synthetic.* but "
                                              r".*cityscapes-vps.* was asked for"):
        open_segmenter(default, LoadOptions(classes="cityscapes_vps"))
