"""The kMaX transformer decoder: object queries as cluster centres of pixel features.

Each layer first predicts class and mask logits from the current queries (these are
also the deep-supervision outputs of the round), then performs k-means cross-attention
(seed 002, eq. 2; kMaX-DeepLab):

    C_hat = C + argmax_N(Q^c (K^p)^T) V^p

The logits ``Q^c (K^p)^T`` are the round's mask logits (queries x pixels); the argmax
over the query axis assigns every pixel to one cluster (one-hot), and every query adds
up the values of the pixels assigned to it. The argmax has no gradient; the mask
logits learn through the round's mask losses, which is why every round is supervised.

kMaX-DeepLab runs its rounds at strides 32, 16 and 8 of 1025x2049 inputs; at the
256x512 inputs of this package a pedestrian is a few pixels wide, so one more round at
stride 4 lets the queries of small things gather their own pixels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Sequential):
    def __init__(self, cin: int, hidden: int, cout: int) -> None:
        super().__init__(nn.Linear(cin, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, cout))


class Predictor(nn.Module):
    """Class logits (C + 1, the last is "no object") and mask logits of the queries.

    Mask logits are the dot product of a per-query mask kernel with L2-normalised
    per-pixel mask embeddings (kMaX's prediction head).
    """

    def __init__(self, query_dim: int, pixel_dim: int, mask_dim: int, num_classes: int) -> None:
        super().__init__()
        self.class_head = nn.Linear(query_dim, num_classes + 1)
        self.mask_head = MLP(query_dim, query_dim, mask_dim)
        self.pixel_head = nn.Sequential(nn.Conv2d(pixel_dim, mask_dim, 1, bias=False),
                                        nn.BatchNorm2d(mask_dim))

    def forward(self, queries: torch.Tensor, pixels: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        pixel_embed = F.normalize(self.pixel_head(pixels), dim=1)
        b, c, h, w = pixel_embed.shape
        # (B, HW, C) is a view of channels_last memory: one batched matmul, no copy.
        flat = pixel_embed.permute(0, 2, 3, 1).reshape(b, h * w, c)
        mask_logits = torch.bmm(self.mask_head(queries), flat.transpose(1, 2))
        return self.class_head(queries), mask_logits.view(b, -1, h, w)


class KMeansLayer(nn.Module):
    """One decoder round: predict, k-means cross-attention, query self-attention, FFN."""

    def __init__(self, query_dim: int, pixel_dim: int, mask_dim: int, num_classes: int,
                 num_heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.predictor = Predictor(query_dim, pixel_dim, mask_dim, num_classes)
        self.value = nn.Sequential(nn.Conv2d(pixel_dim, query_dim, 1, bias=False),
                                   nn.BatchNorm2d(query_dim))
        # kMaX normalises the cluster update with batch norm; a layer norm does the same
        # job without depending on the batch (the update is a sum over pixels).
        self.update_norm = nn.LayerNorm(query_dim)
        self.update_proj = nn.Linear(query_dim, query_dim)
        self.attn = nn.MultiheadAttention(query_dim, num_heads, batch_first=True)
        self.attn_norm = nn.LayerNorm(query_dim)
        self.ffn = MLP(query_dim, ffn_dim, query_dim)
        self.ffn_norm = nn.LayerNorm(query_dim)

    def forward(self, queries: torch.Tensor, pixels: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        class_logits, mask_logits = self.predictor(queries, pixels)
        queries = queries + self.update_proj(self.update_norm(
            kmeans_update(mask_logits, self.value(pixels))))
        attended, _ = self.attn(queries, queries, queries, need_weights=False)
        queries = self.attn_norm(queries + attended)
        queries = self.ffn_norm(queries + self.ffn(queries))
        return queries, class_logits, mask_logits


def kmeans_update(mask_logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``argmax_N(mask_logits) @ V`` of seed 002 eq. 2, summed in float32.

    mask_logits: (B, N, H, W); values: (B, D, H, W). Returns (B, N, D): for each query
    the sum of the values of the pixels whose highest-scoring query it is.
    """
    b, n = mask_logits.shape[:2]
    assignment = mask_logits.detach().flatten(2).argmax(dim=1)            # (B, HW)
    pixel_values = values.flatten(2).transpose(1, 2).float()              # (B, HW, D)
    index = assignment.unsqueeze(-1).expand(-1, -1, pixel_values.shape[-1])
    summed = pixel_values.new_zeros(b, n, pixel_values.shape[-1])
    return summed.scatter_add(1, index, pixel_values).to(values.dtype)
