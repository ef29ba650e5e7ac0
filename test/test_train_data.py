"""Training frames, pair sampling, augmentation and stride-2 targets."""
import numpy as np
import pytest
import torch

from testkit.scenes import CAR, CLASSES, LABEL_DIVISOR, ROAD, SKY, ToyVideos
from vps_ros.data.frames import VideoFrame
from vps_ros.errors import DataError
from vps_ros.train.augment import augment
from vps_ros.train.batch import MIN_SEGMENT_AREA, make_batch, make_target
from vps_ros.train.config import AugmentConfig, StageConfig
from vps_ros.train.frames import NO_TRACK, FrameBank, to_train_frame

VOID = CLASSES.void_id * LABEL_DIVISOR


def frame_of(panoptic):
    h, w = panoptic.shape
    return VideoFrame("s", 0, 0, np.zeros((h, w, 3), np.uint8), np.asarray(panoptic, np.int32))


def test_segments_of_a_panoptic_map_void_and_crowd_ignored():
    panoptic = np.full((4, 8), SKY * LABEL_DIVISOR)
    panoptic[2:, :] = ROAD * LABEL_DIVISOR
    panoptic[2:, 0:2] = CAR * LABEL_DIVISOR + 7
    panoptic[2:, 2:4] = CAR * LABEL_DIVISOR          # crowd: thing without instance
    panoptic[0, 7] = VOID
    frame = to_train_frame(frame_of(panoptic), CLASSES, LABEL_DIVISOR)
    assert sorted(zip(frame.classes.tolist(), frame.tracks.tolist())) == \
        [(ROAD, NO_TRACK), (SKY, NO_TRACK), (CAR, CAR * LABEL_DIVISOR + 7)]
    assert frame.ids[0, 7] == -1 and (frame.ids[2:, 2:4] == -1).all()
    assert frame.classes[frame.ids[3, 0]] == CAR and frame.classes[frame.ids[0, 0]] == SKY


def test_unknown_class_ids_are_a_data_error_naming_the_frame():
    with pytest.raises(DataError, match=r"sequence s frame 0: class ids \[42\] are not in class "
                       r"table 'synthetic'"):
        to_train_frame(frame_of(np.full((2, 2), 42 * LABEL_DIVISOR)), CLASSES, LABEL_DIVISOR)


def test_pairs_come_from_one_sequence_within_the_gap():
    videos = list(ToyVideos(3, 6, 32, 64))
    bank = FrameBank(videos, CLASSES, LABEL_DIVISOR, (32, 64))
    assert len(bank) == 18 and [len(s) for s in bank.sequences] == [6, 6, 6]
    where = {id(f): (s, i) for s, seq in enumerate(bank.sequences) for i, f in enumerate(seq)}
    for a, b in bank.sample_pairs(200, 2, np.random.default_rng(0)):
        (sa, ia), (sb, ib) = where[id(a)], where[id(b)]
        assert sa == sb and 1 <= abs(ia - ib) <= 2


def test_frames_are_kept_at_the_model_input_size():
    frame = next(iter(ToyVideos(1, 1, 100, 300)))
    bank = FrameBank([frame], CLASSES, LABEL_DIVISOR, (64, 128))
    stored = bank.sequences[0][0]
    assert stored.image.shape == (64, 128, 3) and stored.ids.shape == (64, 128)
    original = to_train_frame(frame, CLASSES, LABEL_DIVISOR)
    assert stored.classes.tolist() == original.classes.tolist()
    assert stored.ids[50, 64] == original.ids[int(50 * 100 / 64), int(64 * 300 / 128)]


def test_augmentation_keeps_image_and_ids_aligned():
    frame = to_train_frame(next(iter(ToyVideos(1, 1, 64, 128))), CLASSES, LABEL_DIVISOR)
    colours = {}
    for c in np.unique(frame.classes):
        colours[c] = frame.image[np.isin(frame.ids, np.flatnonzero(frame.classes == c))].mean(0)
    config = AugmentConfig(brightness=0, contrast=0, saturation=0, flip=0.5)
    rng = np.random.default_rng(1)
    for _ in range(5):
        image, ids = augment(frame, (64, 96), (0.6, 1.4), config, rng)
        assert image.shape == (64, 96, 3) and image.dtype == np.uint8
        assert ids.shape == (64, 96) and ids.dtype == np.int16
        for c, colour in colours.items():
            inside = np.isin(ids, np.flatnonzero(frame.classes == c))
            if inside.sum() > 50:  # each class keeps its look under rescale, crop and flip
                assert np.abs(image[inside].mean(0) - colour).max() < 25


def test_crops_larger_than_the_rescaled_frame_are_padded_with_void():
    frame = to_train_frame(next(iter(ToyVideos(1, 1, 32, 64))), CLASSES, LABEL_DIVISOR)
    _, ids = augment(frame, (64, 128), (1.0, 1.0), AugmentConfig(), np.random.default_rng(0))
    assert (ids == -1).sum() == 64 * 128 - 32 * 64


def test_targets_hold_the_covered_share_of_every_stride2_cell():
    ids = np.full((8, 8), 0, np.int16)
    ids[:, 4:] = 1
    ids[0:2, 0:2] = 2                    # 4 pixels: below MIN_SEGMENT_AREA, ignored
    ids[6:8, 4] = -1                     # void: half of cell (3, 2)
    frame = to_train_frame(frame_of(np.zeros((8, 8))), CLASSES, LABEL_DIVISOR)
    frame.classes, frame.tracks = np.array([SKY, ROAD, CAR]), np.array([NO_TRACK, NO_TRACK, 5])
    assert MIN_SEGMENT_AREA > 4
    target = make_target(ids, frame)
    assert target.classes.tolist() == [SKY, ROAD]
    assert target.masks.shape == (2, 4, 4)
    assert target.masks[0].tolist() == [[0, 1, 0, 0]] + [[1, 1, 0, 0]] * 3
    assert target.masks[1].tolist() == [[0, 0, 1, 1]] * 3 + [[0, 0, 0.5, 1]]
    assert target.labels.tolist() == [[-1, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, -1, 1]]
    assert target.valid.tolist() == (target.labels >= 0).tolist()
    pooled = target.pooled((1, 1))
    assert pooled.masks.flatten().tolist() == [7 / 16, 7.5 / 16] and pooled.labels.item() == 1


def test_batches_hold_pairs_of_frames_and_their_targets():
    bank = FrameBank(list(ToyVideos(2, 4, 64, 128)), CLASSES, LABEL_DIVISOR, (64, 128))
    pairs = bank.sample_pairs(3, 2, np.random.default_rng(0))
    batch = make_batch(pairs, StageConfig(crop=[64, 96], pairs=3), AugmentConfig(),
                       np.random.default_rng(0))
    assert batch.images.shape == (6, 3, 64, 96) and batch.images.dtype == torch.float32
    assert len(batch.targets) == 6
    for target in batch.targets:
        assert target.masks.shape[1:] == (32, 48)
        covered = target.masks.sum(0)
        assert (covered <= 1 + 1e-6).all() and (covered[target.valid] > 0.5).all()
