"""Convolutional backbone (strides 4/8/16/32) and the pixel decoder that fuses them.

Plain 3x3 convolutions with batch norm and ReLU (ResNet basic blocks): on a 2-core CPU
they reach a far larger share of the matmul peak than large depthwise kernels, and
batch norm folds into the convolution at inference (:func:`fuse_conv_bn`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1,
                 relu: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                                   nn.BatchNorm2d(cout)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block; a strided one changes width with a 1x1 projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(cin, cout, 3, stride)
        self.conv2 = ConvBNReLU(cout, cout, 3, 1, relu=False)
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                         else ConvBNReLU(cin, cout, 1, stride, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x), inplace=True)


class Backbone(nn.Module):
    """Two strided stem convolutions, then four stages; returns features at strides
    2 (the first stem convolution), 4, 8, 16 and 32."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        w4 = config.widths[0]
        self.stem2 = ConvBNReLU(3, config.stem_width, 3, 2)
        self.stem4 = ConvBNReLU(config.stem_width, w4, 3, 2)
        self.stages = nn.ModuleList()
        cin = w4
        for i, (width, count) in enumerate(zip(config.widths, config.blocks)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(cin, width, stride)] if stride == 2 else []
            blocks += [BasicBlock(width, width) for _ in range(count - len(blocks))]
            self.stages.append(nn.Sequential(*blocks))
            cin = width

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem2(image)
        features = [x]
        x = self.stem4(x)
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class ContextLayer(nn.Module):
    """A transformer encoder layer over the stride-32 pixels: global context for the
    queries' cluster updates (kMaX's pixel decoder uses axial attention at this stride)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0,
                                                batch_first=True, norm_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.layer(x.flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class PixelDecoder(nn.Module):
    """Top-down fusion (FPN) of the backbone features.

    Returns pixel features at strides 32, 16, 8, 4 (for the k-means rounds and the
    auxiliary semantic head) and 2 (for the final masks: driving scenes are full of
    things a few pixels wide), with ``config.decoder_widths`` channels.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d32, d16, d8, d4, d2 = config.decoder_widths
        w4, w8, w16, w32 = config.widths
        self.lateral32 = ConvBNReLU(w32, d32, 1)
        self.context = nn.Sequential(*[ContextLayer(d32, config.num_heads)
                                       for _ in range(config.context_layers)])
        self.lateral16 = ConvBNReLU(w16, d16, 1, relu=False)
        self.top16 = ConvBNReLU(d32, d16, 1, relu=False)
        self.fuse16 = ConvBNReLU(d16, d16, 3)
        self.lateral8 = ConvBNReLU(w8, d8, 1, relu=False)
        self.top8 = ConvBNReLU(d16, d8, 1, relu=False)
        self.fuse8 = ConvBNReLU(d8, d8, 3)
        self.lateral4 = ConvBNReLU(w4, d4, 1, relu=False)
        self.top4 = ConvBNReLU(d8, d4, 1, relu=False)
        self.fuse4 = ConvBNReLU(d4, d4, 3)
        self.lateral2 = ConvBNReLU(config.stem_width, d2, 1, relu=False)
        self.top2 = ConvBNReLU(d4, d2, 1, relu=False)
        self.fuse2 = ConvBNReLU(d2, d2, 3)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        c2, c4, c8, c16, c32 = features
        p32 = self.context(self.lateral32(c32))
        p16 = self.fuse16(F.relu(self.lateral16(c16) + _up(self.top16(p32), c16)))
        p8 = self.fuse8(F.relu(self.lateral8(c8) + _up(self.top8(p16), c8)))
        p4 = self.fuse4(F.relu(self.lateral4(c4) + _up(self.top4(p8), c4)))
        p2 = self.fuse2(F.relu(self.lateral2(c2) + _up(self.top2(p4), c2)))
        return [p32, p16, p8, p4, p2]


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm2d into the Conv2d before it (in place)."""
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential) and len(child) >= 2 and \
                isinstance(child[0], nn.Conv2d) and isinstance(child[1], nn.BatchNorm2d):
            fused = nn.utils.fusion.fuse_conv_bn_eval(child[0], child[1])
            setattr(module, name, nn.Sequential(fused, *list(child)[2:]))
        else:
            fuse_conv_bn(child)
    return module
