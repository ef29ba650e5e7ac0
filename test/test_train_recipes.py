"""The dataset recipes load, their global batch splits over 1 GPU (with accumulation)
and over 8, and their network builds around a ResNet-50 AutoBackbone."""
import dataclasses
import os

import pytest
import torch

from vps_ros.model.network import KMaXNet
from vps_ros.resources import config_path
from vps_ros.train.config import load_train_config
from vps_ros.train.stream import Shard
from vps_ros.types import ClassTable

RECIPES = {"train_cityscapes_vps.yaml": "cityscapes-vps", "train_kitti_step.yaml": "kitti-step",
           "train_vipseg.yaml": "vipseg"}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_recipe_splits_over_one_and_eight_gpus(name):
    config = load_train_config(config_path(name))
    assert config.data.train.type == RECIPES[name] and config.device == "cuda"
    assert config.model.backbone.type == "transformers" and config.model.backbone.pretrained
    Shard(0, 8, config.optim.accumulate).check(config)
    Shard(0, 1, 8).check(config)
    assert all(stage.crop == [config.model.input_height, config.model.input_width]
               for stage in config.curriculum)


def test_the_recipe_network_runs_on_a_resnet50_of_random_weights():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import ResNetConfig  # the architecture of microsoft/resnet-50
    hf = ResNetConfig(out_features=["stage1", "stage2", "stage3", "stage4"])
    model = load_train_config(config_path("train_kitti_step.yaml")).model
    model = dataclasses.replace(
        model, widths=list(hf.hidden_sizes),
        backbone=dataclasses.replace(model.backbone, hf_config=hf.to_json_string()))
    net = KMaXNet(model, len(ClassTable.builtin("kitti-step"))).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 64, 128))
    assert out["mask_logits"].shape == (1, 128, 32, 64)
    assert sum(p.numel() for p in net.backbone.body.parameters()) > 23e6
