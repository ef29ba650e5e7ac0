"""The network end to end: shapes and dtypes, k-means cross-attention, fused inference."""
import copy

import pytest
import torch

from testkit.scenes import SMALL
from vps_ros.model.backbone import fuse_conv_bn
from vps_ros.model.config import ModelConfig
from vps_ros.model.kmax import Predictor, kmeans_update
from vps_ros.model.network import KMaXNet


def test_forward_shapes_and_dtypes_through_the_whole_model():
    torch.manual_seed(0)
    net = KMaXNet(SMALL, num_classes=5)
    images = torch.rand(3, 3, 64, 128) * 255
    out = net(images, aux=True)
    assert out["class_logits"].shape == (3, 12, 6)            # C + 1 ("no object")
    assert out["mask_logits"].shape == (3, 12, 32, 64)        # stride 2
    assert out["embeddings"].shape == (3, 12, 8)
    assert out["semantic_logits"].shape == (3, 5, 16, 32)     # stride 4
    strides = [64 // r["mask_logits"].shape[-2] for r in out["rounds"]]
    assert strides == [32, 16, 16, 8, 4]                      # rounds [1, 2, 1, 1]
    assert all(r["class_logits"].shape == (3, 12, 6) for r in out["rounds"])
    for value in [out["class_logits"], out["mask_logits"], out["embeddings"]]:
        assert value.dtype == torch.float32 and torch.isfinite(value).all()
    assert set(net(images)) == {"class_logits", "mask_logits", "embeddings"}


def test_every_parameter_gets_a_gradient_from_the_outputs():
    net = KMaXNet(SMALL, num_classes=5)
    out = net(torch.rand(2, 3, 64, 128) * 255, aux=True)
    loss = (out["class_logits"].sum() + out["mask_logits"].sum() + out["embeddings"].sum()
            + out["semantic_logits"].sum() + sum(r["mask_logits"].sum() + r["class_logits"].sum()
                                                 for r in out["rounds"]))
    loss.backward()
    without = [n for n, p in net.named_parameters() if p.grad is None]
    assert without == []


def test_kmeans_update_sums_the_values_of_the_pixels_each_query_wins():
    # 3 queries, 2x2 pixels: query 0 wins pixels 0 and 3, query 2 wins pixels 1 and 2.
    logits = torch.tensor([[5.0, 0.0, 0.0, 4.0], [1.0, 1.0, 1.0, 1.0],
                           [0.0, 2.0, 3.0, 0.0]]).view(1, 3, 2, 2)
    values = torch.tensor([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]]).view(1, 2, 2, 2)
    update = kmeans_update(logits, values)
    assert torch.equal(update, torch.tensor([[[5.0, 50.0], [0.0, 0.0], [5.0, 50.0]]]))


def test_kmeans_assignment_passes_no_gradient_to_the_logits():
    logits = torch.randn(1, 4, 3, 3, requires_grad=True)
    values = torch.randn(1, 2, 3, 3, requires_grad=True)
    kmeans_update(logits, values).sum().backward()
    assert logits.grad is None and values.grad is not None


def test_fused_network_computes_what_the_unfused_one_does():
    torch.manual_seed(1)
    net = KMaXNet(SMALL, num_classes=5)
    net.train()
    net(torch.rand(4, 3, 64, 128) * 255)  # non-trivial batch-norm statistics
    net.eval()
    fused = fuse_conv_bn(copy.deepcopy(net))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    images = torch.rand(2, 3, 64, 128) * 255
    with torch.inference_mode():
        a, b = net(images), fused(images)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("key, value, message", [
    ("widths", [8, 16, 24], "model.widths: expected 4 values"),
    ("decoder_widths", [8, 16, 24, 32], "model.decoder_widths: expected 5 values"),
    ("input_height", 100, "must be a multiple of 32"),
    ("query_dim", 30, "not divisible by model.num_heads"),
])
def test_inconsistent_model_configs_are_rejected(key, value, message):
    from vps_ros.config import from_mapping
    from vps_ros.errors import ConfigError
    with pytest.raises(ConfigError, match=message):
        from_mapping(ModelConfig, {key: value, "num_heads": 4}, "model")


@pytest.mark.parametrize("fused", [False, True])
def test_factorised_mask_logits_at_inference_equal_the_direct_ones(fused):
    torch.manual_seed(0)
    predictor = Predictor(query_dim=32, pixel_dim=8, mask_dim=24, num_classes=3)
    bn = predictor.pixel_head[1]
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.normal_()
    bn.bias.data.normal_()
    queries, pixels = torch.randn(2, 7, 32), torch.randn(2, 8, 12, 20)
    predictor.train()
    predictor.pixel_head.eval()  # the direct way with the batch norm's running statistics
    with torch.no_grad():
        expected = predictor(queries, pixels)[1]
        inference = fuse_conv_bn(copy.deepcopy(predictor)) if fused else predictor
        assert inference.eval().factorise
        got = inference(queries, pixels)[1]
    assert got.shape == expected.shape == (2, 7, 12, 20)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
