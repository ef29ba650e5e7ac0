"""The vectorised mask-wise merge against the reference (the loop it replaced, kept in
testkit/merge_reference.py): identical segments, pixel for pixel, on the shipped model's
outputs for real frames, on smooth random logits at several grid scales, and on the
hand-made masks of test_model_postprocess."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from testkit import merge_reference
from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.model import PostprocessConfig, Segmenter
from vps_ros.model.postprocess import merge_masks
from vps_ros.pipeline import DEFAULT_MODEL
from vps_ros.resources import model_path
from vps_ros.types import ClassTable

SYNTHETIC = ClassTable.builtin("synthetic")
FIELDS = ("segment_map", "class_ids", "scores", "is_thing", "boxes", "areas", "embeddings")


def assert_same(got, expected):
    for field in FIELDS:
        a, b = getattr(got, field), getattr(expected, field)
        assert a.dtype == b.dtype and a.shape == b.shape, field
        assert np.array_equal(a, b), f"{field} differs"


def both(class_logits, mask_logits, embeddings, is_thing, size, config):
    args = (class_logits, mask_logits, embeddings, is_thing, size, config)
    return merge_masks(*args), merge_reference.merge_masks(*args)


@pytest.fixture(scope="module")
def shipped_outputs():
    """The shipped model's query predictions for six test-split frames."""
    segmenter = Segmenter.from_checkpoint(model_path(DEFAULT_MODEL))
    dataset = SyntheticDataset("test", num_sequences=3, num_frames=2)
    images = np.stack([frame.image for frame in dataset])
    return segmenter, segmenter.predict(images)


@pytest.mark.parametrize("config", [
    PostprocessConfig(),
    PostprocessConfig(class_threshold=0.2, mask_threshold=0.4, overlap_threshold=0.3),
    PostprocessConfig(merge_stuff=False, split_things=False, max_segments=7),
], ids=["shipped thresholds", "loose", "no merge, no split, few segments"])
def test_identical_segments_on_the_shipped_models_outputs(shipped_outputs, config):
    segmenter, out = shipped_outputs
    for i in range(len(out["class_logits"])):
        got, expected = both(out["class_logits"][i], out["mask_logits"][i],
                             out["embeddings"][i], segmenter.classes.is_thing_lut,
                             segmenter.input_size, config)
        assert expected.num_segments >= 5       # a real scene, not an empty frame
        assert_same(got, expected)


def smooth_logits(rng, queries, height, width):
    """Logits of blob-shaped masks, each over about a tenth of the grid, with long
    threshold crossings."""
    noise = torch.from_numpy(rng.normal(size=(queries, 1, height // 6 + 2, width // 6 + 2))
                             .astype(np.float32))
    field = F.interpolate(noise, size=(height, width), mode="bicubic", align_corners=False)[:, 0]
    field = (field - field.mean((1, 2), keepdim=True)) / field.std((1, 2), keepdim=True)
    return ((field - 1.3) * 6).contiguous()


@pytest.mark.parametrize("grid,size", [
    ((64, 128), (128, 256)),      # stride 2, like the kMaX masks
    ((32, 64), (128, 256)),       # stride 4, like Mask2Former's masks
    ((60, 76), (120, 152)),       # a grid that is no multiple of the tiles
    ((64, 128), (64, 128)),       # the same size
    ((40, 50), (120, 150)),       # a scale of 3: the whole-map path
    ((30, 40), (100, 130)),       # no integer scale at all
])
def test_identical_segments_on_random_smooth_logits(grid, size):
    rng = np.random.default_rng(sum(grid) + sum(size))
    is_thing = np.array([False, False, False, True, True, True])
    config = PostprocessConfig(class_threshold=0.3, overlap_threshold=0.5, min_area_thing=8,
                               min_area_stuff=8)
    for _ in range(3):
        queries = 30
        class_logits = torch.from_numpy(rng.normal(size=(queries, 7)).astype(np.float32) * 3)
        got, expected = both(class_logits, smooth_logits(rng, queries, *grid),
                             torch.from_numpy(rng.normal(size=(queries, 4)).astype(np.float32)),
                             is_thing, size, config)
        assert expected.num_segments >= 3
        assert_same(got, expected)


def test_identical_segments_on_hand_made_masks():
    """Boxes with logits exactly at and next to the threshold, touching borders and
    overlapping: the cases where a pixel's side is decided by the last bit."""
    threshold = float(np.log(0.6 / 0.4))
    masks = torch.full((5, 16, 24), -10.0)
    masks[0, :8, :12] = 10.0
    masks[1, 4:16, 6:24] = threshold                     # exactly at the threshold
    masks[2, 0:16, 20:24] = float(np.nextafter(np.float32(threshold), np.float32(10)))
    masks[3, 10:16, 0:4] = 10.0
    masks[3, 0:2, 22:24] = 10.0                          # a second, smaller part
    masks[4] = torch.linspace(-3, 3, 24)                 # a ramp across the threshold
    class_logits = torch.tensor([[5.0, 0, 0, 0, 0], [0, 5.0, 0, 0, 0], [0, 0, 5.0, 0, 0],
                                 [0, 0, 0, 5.0, 0], [4.0, 0, 0, 0, 0]])
    is_thing = np.array([False, False, True, True])
    config = PostprocessConfig(min_area_thing=0, min_area_stuff=0, overlap_threshold=0.2)
    for size in [(32, 48), (16, 24), (64, 96)]:
        got, expected = both(class_logits, masks, torch.eye(5)[:, :3] + 1, is_thing, size,
                             config)
        assert expected.num_segments >= 3
        assert_same(got, expected)


@pytest.mark.parametrize("seed", range(24))
def test_identical_segments_on_many_random_inputs(seed):
    """Random grids at integer scales 1..4 and none, random thresholds and settings."""
    rng = np.random.default_rng(1000 + seed)
    grid, scale = [(32, 64), (40, 48), (64, 128), (24, 40)][seed % 4], [1, 2, 3, 4][seed // 4 % 4]
    size = (grid[0] * scale, grid[1] * scale) if seed < 20 else (grid[0] * 2 + 1, grid[1] * 3)
    config = PostprocessConfig(class_threshold=float(rng.uniform(0.1, 0.6)),
                               mask_threshold=float(rng.uniform(0.3, 0.8)),
                               overlap_threshold=float(rng.uniform(0.2, 0.9)),
                               min_area_thing=int(rng.integers(0, 40)),
                               min_area_stuff=int(rng.integers(0, 80)),
                               merge_stuff=bool(seed % 2), split_things=bool(seed % 3),
                               max_segments=int(rng.integers(5, 60)))
    queries = int(rng.integers(5, 60))
    is_thing = np.array([False, False, False, True, True, True])
    class_logits = torch.from_numpy(rng.normal(size=(queries, 7)).astype(np.float32) * 3)
    got, expected = both(class_logits, smooth_logits(rng, queries, *grid),
                         torch.from_numpy(rng.normal(size=(queries, 4)).astype(np.float32)),
                         is_thing, size, config)
    assert_same(got, expected)


def test_identical_segments_when_many_logits_lie_exactly_on_the_threshold():
    """Logits in steps of 0.25 with the threshold at logit 0: many resized values are
    exactly on it, where the side is decided by torch's own resize."""
    rng = np.random.default_rng(7)
    masks = torch.from_numpy(np.round(rng.normal(size=(20, 16, 32)) * 2).astype(np.float32) / 4)
    class_logits = torch.from_numpy(rng.normal(size=(20, 5)).astype(np.float32) * 3)
    config = PostprocessConfig(class_threshold=0.1, mask_threshold=0.5, overlap_threshold=0.1,
                               min_area_thing=0, min_area_stuff=0)
    for size in [(32, 64), (64, 128)]:
        got, expected = both(class_logits, masks, torch.ones(20, 3), np.array([0, 0, 1, 1], bool),
                             size, config)
        assert expected.num_segments >= 3
        assert_same(got, expected)


def test_identical_segments_on_more_real_frames(shipped_outputs):
    """The shipped model on frames of the val split, at the shipped thresholds."""
    segmenter, _ = shipped_outputs
    images = np.stack([frame.image for frame in SyntheticDataset("val", 4, 3)])
    out = segmenter.predict(images)
    for i in range(len(images)):
        got, expected = both(out["class_logits"][i], out["mask_logits"][i],
                             out["embeddings"][i], segmenter.classes.is_thing_lut,
                             segmenter.input_size, segmenter.postprocess)
        assert expected.num_segments >= 5
        assert_same(got, expected)
