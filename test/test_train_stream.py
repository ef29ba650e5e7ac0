"""Streaming training data: the DataLoader serves the reader's frames, every step's
global batch is a function of (seed, step) however it is split over ranks, micro-batches
and workers, a resumed loader continues with the same batches, and bad data is one
clear error."""
import cv2
import numpy as np
import pytest
import torch

from testkit.train_runs import STILL, tiny_config, write_kitti, write_yaml
from vps_ros.cli import main
from vps_ros.config import from_mapping
from vps_ros.data.formats.datasets import open_dataset
from vps_ros.errors import ConfigError
from vps_ros.train.config import TrainConfig
from vps_ros.train.frames import ReaderFrames, train_frames
from vps_ros.train.stream import PairDataset, Shard, make_loader


@pytest.fixture(scope="module")
def kitti(tmp_path_factory):
    return write_kitti(tmp_path_factory.mktemp("kitti") / "kitti", sequences=2, frames=4)


def config(kitti, tmp_path, **overrides) -> TrainConfig:
    return from_mapping(TrainConfig, tiny_config(kitti, tmp_path / "run", **overrides), "test")


def batches(dataset, shard, start, end):
    return list(make_loader(dataset, shard, start, end, pin_memory=False))


def test_the_loader_serves_the_readers_frames_from_worker_processes(kitti, tmp_path):
    reader = open_dataset("kitti-step", kitti, split="train")
    frames = {(f.sequence, f.index): f for f in reader}
    cfg = config(kitti, tmp_path, augment=STILL, loader={"workers": 2},
                 curriculum=[{"steps": 3, "crop": [64, 128], "pairs": 2, "scale": [1, 1]}])
    source = train_frames(reader, cfg.model.input_size)
    assert isinstance(source, ReaderFrames) and len(source) == 8
    loaded = batches(PairDataset(source, cfg), Shard(), 0, 3)
    assert len(loaded) == 3
    for batch in loaded:
        assert batch.images.shape == (4, 3, 64, 128)
        keys = []
        for image, target in zip(batch.images, batch.targets):
            rgb = image.permute(1, 2, 0).numpy().astype(np.uint8)
            key = next(k for k, f in frames.items() if np.array_equal(f.image, rgb))
            keys.append(key)
            # the target's segments: the frame's non-void segments of >= 16 pixels
            values, counts = np.unique(frames[key].panoptic, return_counts=True)
            kept = values[(counts >= 16) & (values // 1000 != 255)]
            assert sorted(target.classes.tolist()) == sorted((kept // 1000).tolist())
        for a, b in zip(keys[0::2], keys[1::2]):
            assert a[0] == b[0] and 0 < abs(a[1] - b[1]) <= 2


def test_every_step_is_the_same_global_batch_however_it_is_split(kitti, tmp_path):
    cfg = config(kitti, tmp_path, pairs=4, steps=3)
    dataset = PairDataset(train_frames(open_dataset("kitti-step", kitti, split="train"),
                                       cfg.model.input_size), cfg)
    whole = batches(dataset, Shard(), 0, 3)
    ranks = [batches(dataset, Shard(rank, 2), 0, 3) for rank in (0, 1)]
    micro = batches(dataset, Shard(0, 1, accumulate=2), 0, 3)
    resumed = batches(dataset, Shard(), 1, 3)
    assert len(whole) == 3 and len(micro) == 6 and len(resumed) == 2
    for step, batch in enumerate(whole):
        assert len(batch) == 8
        torch.testing.assert_close(torch.cat([ranks[0][step].images, ranks[1][step].images]),
                                   batch.images, atol=0, rtol=0)
        torch.testing.assert_close(torch.cat([micro[2 * step].images,
                                              micro[2 * step + 1].images]),
                                   batch.images, atol=0, rtol=0)
    for batch, again in zip(whole[1:], resumed):
        torch.testing.assert_close(again.images, batch.images, atol=0, rtol=0)
        for a, b in zip(again.targets, batch.targets):
            assert torch.equal(a.masks, b.masks) and torch.equal(a.tracks, b.tracks)
    assert not torch.equal(whole[0].images, whole[1].images)


def test_a_global_batch_that_does_not_split_evenly_is_refused(kitti, tmp_path):
    cfg = config(kitti, tmp_path, pairs=3)
    with pytest.raises(ConfigError, match=r"curriculum\[0\]\.pairs 3 does not split over 2 "
                                          r"process\(es\) x 1"):
        Shard(1, 2).check(cfg)


def test_a_missing_dataset_folder_is_one_line_and_exit_code_2(kitti, tmp_path, capsys):
    mapping = tiny_config(tmp_path / "nowhere", tmp_path / "run")
    assert main(["train", "--config", str(write_yaml(tmp_path / "c.yaml", mapping))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nowhere" in err and "not found" in err, err


def test_a_bad_label_met_in_a_worker_names_its_file_rank_and_step(kitti, tmp_path, capsys):
    """Only frame 0 of sequence 0000 is good: the first frame (checked before training)
    passes, the first pair read by a worker is bad."""
    broken = write_kitti(tmp_path / "broken", sequences=1, frames=4)
    bad = sorted((broken / "panoptic_maps" / "train" / "0000").glob("*.png"))[1:]
    for png in bad:
        bgr = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        bgr[..., 2] = 250  # R: semantic id 250, not a class of the 10-class table
        cv2.imwrite(str(png), bgr)
    mapping = tiny_config(broken, tmp_path / "run", loader={"workers": 1})
    assert main(["train", "--config", str(write_yaml(tmp_path / "c.yaml", mapping))]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1, errors  # (the progress bar shares stderr)
    err = errors[0]
    assert err.startswith("vps-ros train: error: rank 0, step 1: ")
    assert "panoptic_maps/train/0000/00000" in err and "unknown class id(s) [250]" in err
