"""Checkpoint round trip, and one clear error for every way a checkpoint can be wrong."""
import logging
from dataclasses import replace

import numpy as np
import pytest
import torch

from testkit.pipeline_helpers import LOOSE
from testkit.scenes import CLASSES, SMALL, ToyVideos
from vps_ros.errors import CheckpointError
from vps_ros.model import PostprocessConfig, Segmenter
from vps_ros.model.checkpoint import load_checkpoint, save_checkpoint
from vps_ros.model.network import KMaXNet
from vps_ros.types import ClassInfo, ClassTable


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    net = KMaXNet(SMALL, len(CLASSES))
    path = tmp_path / "model.pt"
    save_checkpoint(path, net, CLASSES, PostprocessConfig(class_threshold=0.3),
                    {"steps": 12, "note": "test"})
    return path, net


def test_round_trip_restores_weights_config_classes_and_metadata(saved):
    path, net = saved
    checkpoint = load_checkpoint(path)
    assert checkpoint.net.config == SMALL and checkpoint.classes == CLASSES
    assert checkpoint.training == {"steps": 12, "note": "test"}
    assert checkpoint.postprocess.class_threshold == 0.3
    for key, value in net.state_dict().items():
        assert torch.equal(checkpoint.net.state_dict()[key], value), key


def test_loaded_segmenter_segments_like_the_original_network(saved):
    """An untrained network is unsure of everything: thresholds of zero keep every
    query, so both sides have segments to compare, and a network initialised
    differently segments differently."""
    path, net = saved
    loaded = Segmenter.from_checkpoint(path)
    loaded.postprocess = LOOSE
    original = Segmenter(net, CLASSES, postprocess=LOOSE)
    torch.manual_seed(1)
    other = Segmenter(KMaXNet(SMALL, len(CLASSES)), CLASSES, postprocess=LOOSE)
    images = [frame.image for frame in ToyVideos(1, 2, 64, 128)]
    for a, b, c in zip(original.segment(images), loaded.segment(images), other.segment(images)):
        assert a.num_segments >= 2 and a.is_thing.any()
        assert np.array_equal(a.segment_map, b.segment_map)
        assert np.array_equal(a.class_ids, b.class_ids)
        np.testing.assert_allclose(a.embeddings, b.embeddings, atol=1e-6)
        assert not np.array_equal(a.segment_map, c.segment_map)
    assert loaded.input_size == (64, 128) and loaded.embed_dim == 8
    assert loaded.classes == CLASSES and loaded.device == "cpu"


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"nothere\.pt: checkpoint file not found"):
        Segmenter.from_checkpoint(tmp_path / "nothere.pt")


def test_truncated_file(saved, tmp_path):
    path, _ = saved
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt: truncated or not a checkpoint"):
        Segmenter.from_checkpoint(cut)


def test_not_a_checkpoint(tmp_path):
    other = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match=r"weights\.pt: not a vps_ros segmenter checkpoint"):
        Segmenter.from_checkpoint(other)


class Payload:
    """Something a malicious checkpoint could carry: unpickling it would run code."""

    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_pickled_code_is_refused_not_executed(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "vps_ros.segmenter", "payload": Payload()}, evil)
    with pytest.raises(CheckpointError, match=r"evil\.pt: refusing to load: .* \(print\)"):
        Segmenter.from_checkpoint(evil)
    assert "unpickled code ran" not in capsys.readouterr().out


def test_weights_of_another_architecture(saved, tmp_path):
    path, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["model"]["widths"] = [8, 16, 24, 48]
    other = tmp_path / "other.pt"
    torch.save(payload, other)
    with pytest.raises(CheckpointError, match=r"other\.pt: weights are from another "
                       r"architecture.*shapes differ for backbone\.stages\.3"):
        Segmenter.from_checkpoint(other)


def test_model_config_this_version_does_not_know(saved, tmp_path):
    path, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["model"]["axial_attention"] = True
    other = tmp_path / "newer.pt"
    torch.save(payload, other)
    with pytest.raises(CheckpointError, match=r"newer\.pt: architecture or class table not "
                       r"understood.*unknown key\(s\) axial_attention"):
        Segmenter.from_checkpoint(other)


def test_class_table_that_does_not_fit_the_class_head(saved, tmp_path):
    path, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["classes"]["classes"] = payload["classes"]["classes"][:8]
    other = tmp_path / "fewer.pt"
    torch.save(payload, other)
    with pytest.raises(CheckpointError, match=r"fewer\.pt: class head predicts 10 classes but "
                       r"the checkpoint's class table 'synthetic'.* has 8"):
        Segmenter.from_checkpoint(other)


def test_checkpoint_for_another_class_table_than_asked(saved):
    path, _ = saved
    cityscapes_like = ClassTable("other", tuple(ClassInfo(i, f"c{i}", i > 5, (i, i, i))
                                                for i in range(10)))
    with pytest.raises(CheckpointError, match=r"model\.pt: trained for class table 'synthetic' "
                       r"\(road, sidewalk.*but 'other' \(c0"):
        Segmenter.from_checkpoint(path, classes=cityscapes_like)
    assert Segmenter.from_checkpoint(path, classes=CLASSES).classes == CLASSES


def test_cuda_asked_without_a_gpu_falls_back_to_cpu_with_a_warning(saved, monkeypatch, caplog):
    path, _ = saved
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="vps_ros.model.segmenter"):
        segmenter = Segmenter.from_checkpoint(path, device="cuda")
    assert segmenter.device == "cpu"
    assert "no CUDA device is available" in caplog.text


def test_saving_with_a_class_table_of_another_size_is_a_programming_error(tmp_path):
    net = KMaXNet(replace(SMALL), 4)
    with pytest.raises(ValueError, match="has 10 classes, the network predicts 4"):
        save_checkpoint(tmp_path / "x.pt", net, CLASSES)
