"""The whole network: backbone, pixel decoder, kMaX decoder and heads."""
from __future__ import annotations

import torch
from torch import nn

from .backbone import Backbone, PixelDecoder
from .config import ModelConfig
from .hf_backbone import TransformersBackbone
from .kmax import MLP, KMeansLayer, Predictor

# ImageNet statistics, the usual normalisation of RGB inputs in [0, 1].
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def build_backbone(config: ModelConfig) -> nn.Module:
    """The backbone ``config.backbone.type`` names: a module returning features at strides
    2, 4, 8, 16 and 32 (``transformers`` is imported only when one of its backbones is
    built)."""
    if config.backbone.type == "transformers":
        return TransformersBackbone(config)
    return Backbone(config)


class KMaXNet(nn.Module):
    """kMaX-style mask transformer (seed 002, clip length 1 = online).

    ``forward`` takes a (B, 3, H, W) float batch of RGB values in 0..255 at the model's
    input size and returns a dict:

    - ``class_logits`` (B, N, C + 1), the last class being "no object";
    - ``mask_logits`` (B, N, H/2, W/2);
    - ``embeddings`` (B, N, E), the association embedding of every query (seed 004);
    - with ``aux=True`` also ``rounds`` (one dict of class and mask logits per
      k-means round, at that round's stride, for deep supervision) and
      ``semantic_logits`` (B, C, H/4, W/4) of the auxiliary semantic head.
    """

    def __init__(self, config: ModelConfig, num_classes: int) -> None:
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        self.register_buffer("pixel_mean", torch.tensor(_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("pixel_std", torch.tensor(_STD).view(1, 3, 1, 1) * 255.0)
        self.backbone = build_backbone(config)
        self.pixel_decoder = PixelDecoder(config)
        self.queries = nn.Embedding(config.num_queries, config.query_dim)
        d32, d16, d8, d4, d2 = config.decoder_widths
        self.layers = nn.ModuleList(
            KMeansLayer(config.query_dim, width, config.mask_dim, num_classes,
                        config.num_heads, config.ffn_dim)
            for width, count in zip((d32, d16, d8, d4), config.rounds) for _ in range(count))
        self.layer_stage = [stage for stage, count in enumerate(config.rounds)
                            for _ in range(count)]
        self.final = Predictor(config.query_dim, d2, config.mask_dim, num_classes)
        self.embedding_head = MLP(config.query_dim, config.query_dim, config.embed_dim)
        self.semantic_head = nn.Conv2d(d4, num_classes, 1)
        nn.init.normal_(self.queries.weight, std=1.0)

    def forward(self, images: torch.Tensor, aux: bool = False) -> dict:
        x = (images - self.pixel_mean) / self.pixel_std
        pixels = self.pixel_decoder(self.backbone(x))
        queries = self.queries.weight.unsqueeze(0).expand(images.shape[0], -1, -1)
        rounds = []
        for layer, stage in zip(self.layers, self.layer_stage):
            queries, class_logits, mask_logits = layer(queries, pixels[stage])
            rounds.append({"class_logits": class_logits, "mask_logits": mask_logits})
        class_logits, mask_logits = self.final(queries, pixels[4])
        out = {"class_logits": class_logits, "mask_logits": mask_logits,
               "embeddings": self.embedding_head(queries)}
        if aux:
            out["rounds"] = rounds
            out["semantic_logits"] = self.semantic_head(pixels[3])
        return out
