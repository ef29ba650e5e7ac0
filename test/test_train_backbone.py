"""A transformers AutoBackbone as the segmenter's backbone: its pretrained weights are
loaded, it trains, and its checkpoint loads in the node's loader with no network and
without the folder it came from."""
import os
import shutil

import numpy as np
import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub reads it: no test downloads
import huggingface_hub.constants  # noqa: E402
import transformers  # noqa: E402

from testkit.scenes import SMALL, ToyVideos
from vps_ros.config import from_mapping, to_mapping
from vps_ros.errors import ConfigError
from vps_ros.model.registry import LoadOptions, open_segmenter
from vps_ros.train.config import TrainConfig
from vps_ros.train.trainer import Trainer



@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Offline even if another test module imported huggingface_hub first."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def tiny_convnext(folder):
    """A 4-stage ConvNeXt with random weights, saved as a model folder."""
    config = transformers.ConvNextConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                                         out_features=["stage1", "stage2", "stage3", "stage4"])
    torch.manual_seed(7)
    model = transformers.ConvNextBackbone(config)
    model.save_pretrained(folder)
    return model


def train_config(tmp_path, backbone):
    model = {**to_mapping(SMALL), "backbone": backbone}
    return from_mapping(TrainConfig, {
        "out_dir": str(tmp_path / "run"), "val_every": 1000, "checkpoint_every": 1000,
        "tensorboard": False, "loader": {"workers": 0}, "model": model,
        "curriculum": [{"steps": 2, "crop": [64, 128], "pairs": 1, "scale": [0.8, 1.2]}],
        "optim": {"warmup_steps": 1, "backbone_lr_ratio": 0.1}}, "test")


def test_a_pretrained_transformers_backbone_trains_and_its_checkpoint_loads_offline(tmp_path):
    saved = tiny_convnext(tmp_path / "convnext")
    data = ToyVideos(2, 3, 64, 128)
    cfg = train_config(tmp_path, {"type": "transformers", "source": str(tmp_path / "convnext"),
                                  "pretrained": True})
    trainer = Trainer(cfg, "", data, data)
    assert trainer.model_config.widths == [8, 16, 24, 32]
    for name, value in saved.state_dict().items():
        assert torch.equal(trainer.net.backbone.body.state_dict()[name], value), name
    groups = {g["lr_ratio"] for g in trainer.optimizer.param_groups}
    assert groups == {0.1, 1.0}
    final = trainer.run()
    assert not torch.equal(trainer.net.backbone.body.embeddings.patch_embeddings.weight,
                           saved.embeddings.patch_embeddings.weight)
    shutil.rmtree(tmp_path / "convnext")
    segmenter = open_segmenter(str(final), LoadOptions())
    image = next(iter(data)).image[None].astype(np.float32)
    batch = torch.from_numpy(image).permute(0, 3, 1, 2)
    trainer.net.eval()
    with torch.no_grad():
        expected = trainer.net(batch)["mask_logits"]
    got = segmenter.run_network(batch.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got["mask_logits"], expected, atol=1e-4, rtol=1e-4)
    assert len(segmenter.segment([next(iter(data)).image])) == 1


def test_a_random_init_backbone_needs_only_its_config(tmp_path):
    (tmp_path / "cfg").mkdir()
    transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 24, 32],
                              depths=[1, 1, 1, 1]).save_pretrained(tmp_path / "cfg")
    data = ToyVideos(1, 2, 64, 128)
    cfg = train_config(tmp_path, {"type": "transformers", "source": str(tmp_path / "cfg")})
    trainer = Trainer(cfg, "", data, data)
    features = trainer.net.backbone(torch.zeros(1, 3, 64, 128))
    assert [tuple(f.shape[1:]) for f in features] == [
        (SMALL.stem_width, 32, 64), (8, 16, 32), (16, 8, 16), (24, 4, 8), (32, 2, 4)]


@pytest.mark.parametrize("source, message", [
    ("hf:no-such-org/no-such-backbone", "cannot be read .*in the transformers cache"),
    ("not/a/folder", "neither a hub id"),
    ("", "needs a source"),
])
def test_backbones_that_cannot_be_had_are_named(tmp_path, source, message):
    data = ToyVideos(1, 2, 64, 128)
    cfg = train_config(tmp_path, {"type": "transformers", "source": source,
                                  "pretrained": True})
    with pytest.raises(ConfigError, match=f"model.backbone.*{message}"):
        Trainer(cfg, "", data, data)


def test_a_config_of_a_model_type_transformers_does_not_know_is_named(tmp_path):
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text('{"model_type": "no-such-net"}')
    data = ToyVideos(1, 2, 64, 128)
    cfg = train_config(tmp_path, {"type": "transformers", "source": str(tmp_path / "odd")})
    with pytest.raises(ConfigError, match="not a backbone transformers knows"):
        Trainer(cfg, "", data, data)


@pytest.mark.parametrize("stored", ["{not json", "[1, 2]", '{"hidden_sizes": [8]}'])
def test_a_damaged_stored_backbone_config_is_named(stored):
    """A checkpoint's backbone.hf_config that is not JSON, not an object, or has no
    model_type: one ConfigError naming the field."""
    from vps_ros.model.hf_backbone import config_from_json
    with pytest.raises(ConfigError, match="model.backbone.hf_config: not a transformers "
                       "backbone config"):
        config_from_json(stored)
