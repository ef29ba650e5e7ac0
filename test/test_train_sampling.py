"""Training for the weak classes (issue 29): frames drawn by the classes they show,
focus crops on a pedestrian or cyclist, class weights in the losses, extra occlusion
sequences, starting from a checkpoint; all set in the training YAML and checked at load."""
import numpy as np
import pytest
import torch

from testkit.scenes import CLASSES, SMALL, ToyVideos
from vps_ros.config import from_mapping, to_mapping
from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.errors import CheckpointError, ConfigError
from vps_ros.resources import config_path
from vps_ros.train.augment import augment
from vps_ros.train.config import AugmentConfig, SamplingConfig, TrainConfig, load_train_config
from vps_ros.train.frames import NO_TRACK, TrainFrame, pick_pair
from vps_ros.train.losses import mask_losses
from vps_ros.train.sampling import ClassSampler
from vps_ros.train.trainer import Trainer

NAMES = [c.name for c in CLASSES]
CAR, PEDESTRIAN, CYCLIST, ROAD = (NAMES.index(n) for n in ("car", "pedestrian", "cyclist",
                                                             "road"))
WEIGHTS = SamplingConfig(frame_weights=from_mapping(
    SamplingConfig, {"frame_weights": [{"name": "cyclist", "weight": 4.0},
                                       {"name": "pedestrian", "weight": 2.0}]},
    "test").frame_weights, min_pixels=20)


def frame_with(boxes: list[tuple[int, int, int, int, int]]) -> TrainFrame:
    """A 40x80 frame of road with a segment of class c over rows y0:y1, columns x0:x1 for
    each (c, y0, y1, x0, x1); each thing its own track."""
    ids = np.zeros((40, 80), np.int16)
    classes, tracks = [ROAD], [NO_TRACK]
    for k, (c, y0, y1, x0, x1) in enumerate(boxes, start=1):
        ids[y0:y1, x0:x1] = k
        classes.append(c)
        tracks.append(100 + k)
    return TrainFrame(np.zeros((40, 80, 3), np.uint8), ids, np.array(classes, np.int64),
                      np.array(tracks, np.int64))


@pytest.mark.parametrize("boxes, weight", [
    ([], 1.0),
    ([(CAR, 0, 10, 0, 10)], 1.0),                              # a car: no weight
    ([(PEDESTRIAN, 0, 5, 0, 5)], 2.0),                         # 25 px >= 20
    ([(PEDESTRIAN, 0, 4, 0, 4)], 1.0),                         # 16 px < 20
    ([(PEDESTRIAN, 0, 5, 0, 5), (CYCLIST, 10, 15, 10, 15)], 4.0),  # the largest weight
    ([(CYCLIST, 0, 3, 0, 4), (CYCLIST, 10, 13, 10, 14)], 4.0),  # two of 12 px: 24 px shown
])
def test_a_frame_weighs_as_the_rarest_class_it_shows(boxes, weight):
    assert ClassSampler(WEIGHTS, NAMES).frame_weight(frame_with(boxes)) == weight


def test_frames_are_drawn_in_proportion_to_their_weights():
    weights = np.array([1.0, 1.0, 4.0, 2.0, 1.0, 1.0])   # two sequences of three frames
    rng = np.random.default_rng(0)
    picks = [pick_pair([3, 3], 1, rng, np.cumsum(weights))[0] for _ in range(20000)]
    counts = np.zeros(6)
    for s, i in picks:
        counts[3 * s + i] += 1
    assert np.allclose(counts / len(picks), weights / weights.sum(), atol=0.01)


def test_a_pair_is_drawn_within_its_sequences_own_gap():
    rng = np.random.default_rng(1)
    gaps = [pick_pair([40, 40], 2, rng, None, [0, 30]) for _ in range(3000)]
    first = [abs(a[1] - b[1]) for a, b in gaps if a[0] == 0]
    second = [abs(a[1] - b[1]) for a, b in gaps if a[0] == 1]
    assert max(first) == 2 and 20 < max(second) <= 30


def test_a_focus_crop_holds_the_segment_it_was_placed_on():
    frame = frame_with([(CYCLIST, 30, 36, 70, 76), (PEDESTRIAN, 2, 6, 2, 6)])
    sampler = ClassSampler(SamplingConfig(frame_weights=WEIGHTS.frame_weights, min_pixels=30),
                           NAMES)   # the pedestrian (16 px) is too small to focus on
    still = AugmentConfig(flip=0.0, brightness=0.0, contrast=0.0, saturation=0.0)
    for seed in range(50):
        rng = np.random.default_rng(seed)
        centers = sampler.focus_centers((frame, frame), rng)
        assert centers[0] == centers[1] == (32.5, 72.5)
        _, ids = augment(frame, (16, 32), (1.0, 2.0), still, rng, centers[0])
        assert (ids == 1).sum() >= 9, seed    # the cyclist, at 1..2x, in a far corner


def test_class_weights_scale_each_masks_losses():
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0], [1.0, 1.0, -2.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    valid = torch.ones(2, 4, dtype=torch.bool)
    bce, dice = mask_losses(logits, targets, valid)
    each = [mask_losses(logits[i:i + 1], targets[i:i + 1], valid[:1]) for i in range(2)]
    weighted = mask_losses(logits, targets, valid, torch.tensor([3.0, 1.0]))
    assert torch.isclose(weighted[0], (3 * each[0][0] + each[1][0]) / 2)
    assert torch.isclose(weighted[1], (3 * each[0][1] + each[1][1]) / 2)
    assert torch.isclose(bce, (each[0][0] + each[1][0]) / 2)


def test_occlusion_sequences_on_other_seeds_are_new_sequences():
    base = SyntheticDataset("train", 2, 40, 64, 128)
    shifted = SyntheticDataset("train", 2, 40, 64, 128, first_sequence=100000,
                               difficulty="occlusion")
    assert shifted.seed(0) == 100000 and shifted.difficulty.hidden_frames == (20, 30)
    assert not np.array_equal(base.frame(0, 0).image, shifted.frame(0, 0).image)
    assert np.array_equal(shifted.frame(1, 5).image,
                          SyntheticDataset("train", 1, 40, 64, 128, first_sequence=100001,
                                           difficulty="occlusion").frame(0, 5).image)


def test_the_weak_class_recipe_validates():
    config = load_train_config(config_path("train_synthetic_weak_classes.yaml"))
    assert config.init == "models/default.pt" and config.threads == 1
    assert config.loader.workers == 0
    assert {w.name: w.weight for w in config.sampling.frame_weights} == {"cyclist": 4.0,
                                                                        "pedestrian": 2.0}
    assert config.data.extra[0].difficulty == "occlusion"


@pytest.mark.parametrize("text, message", [
    ("loss: {class_weights: [{name: bicycle, weight: 2}]}\n", "'bicycle' is not in"),
    ("sampling: {frame_weights: [{name: cyclist, weight: 0}]}\n", "must be > 0"),
    ("sampling: {focus_scale: [2.0, 1.0]}\n", "focus_scale must be (min, max)"),
    ("sampling: {focus_crop: 1.5}\n", "must be <= 1"),
    ("data: {extra: [{type: kitti-step, path: x, difficulty: occlusion}]}\n",
     "synthetic data only"),
    ("data: {extra: [{split: train, num_frames: 16, difficulty: occlusion}]}\n",
     "num_frames >= 40"),
    ("data: {extra: [{difficulty: hard}]}\n", "is not one of"),
])
def test_bad_weak_class_settings_are_one_clear_error(tmp_path, text, message):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        config = load_train_config(path)
        Trainer(config, str(path), ToyVideos(1, 2, 64, 128), ToyVideos(1, 1, 64, 128))
    assert message in str(err.value) and "\n" not in str(err.value)


def small_config(tmp_path, **overrides) -> TrainConfig:
    mapping = {"out_dir": str(tmp_path / "run"), "val_every": 1000,
               "model": to_mapping(SMALL),
               "curriculum": [{"steps": 2, "crop": [64, 128], "pairs": 2}], **overrides}
    return from_mapping(TrainConfig, mapping, "test")


def test_init_starts_from_a_checkpoints_weights_and_checks_its_architecture(tmp_path):
    data = ToyVideos(1, 2, 64, 128)
    torch.manual_seed(5)
    source = Trainer(small_config(tmp_path / "a", seed=7), "", data, data)
    path = source.save(tmp_path / "source.pt")
    started = Trainer(small_config(tmp_path / "b", init=str(path)), "", data, data)
    for (name, a), b in zip(source.net.state_dict().items(), started.net.state_dict().values()):
        assert torch.equal(a, b), name
    other = to_mapping(SMALL) | {"num_queries": SMALL.num_queries + 1}
    with pytest.raises(CheckpointError, match="another model config"):
        Trainer(small_config(tmp_path / "c", init=str(path), model=other), "", data, data)


def test_focus_sampling_trains_on_the_weighted_frames(tmp_path):
    """A run with frame weights and focus crops draws its batches (deterministic per
    step) and trains a step."""
    data = ToyVideos(2, 3, 64, 128, things=3)
    sampling = {"frame_weights": [{"name": "pedestrian", "weight": 3.0}], "min_pixels": 8,
                "focus_crop": 1.0, "focus_scale": [1.5, 1.5]}
    trainer = Trainer(small_config(tmp_path, sampling=sampling,
                                   loss={"class_weights": [{"name": "pedestrian",
                                                            "weight": 2.0}]}),
                      "", data, data)
    assert trainer.pairs.cumulative is not None and len(trainer.pairs.cumulative) == 6
    first = trainer.pairs.sample(0, 0, trainer.stage_of(0))
    assert np.array_equal(first.images, trainer.pairs.sample(0, 0, trainer.stage_of(0)).images)
    assert trainer.criterion.class_weights[PEDESTRIAN] == 2.0
    assert np.isfinite(trainer.optimize(trainer.sample_batch(trainer.stage_of(0))).loss)
