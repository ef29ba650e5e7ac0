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
    per-pixel mask embeddings (kMaX's prediction head). The pixel embedding is an affine
    map ``v = W p + b`` of the pixel features (1x1 convolution + batch norm); where the
    features are narrower than the embedding (strides 4 and 2), inference computes the
    same logits without forming ``v`` (:func:`factorised_mask_logits`).
    """

    def __init__(self, query_dim: int, pixel_dim: int, mask_dim: int, num_classes: int) -> None:
        super().__init__()
        self.class_head = nn.Linear(query_dim, num_classes + 1)
        self.mask_head = MLP(query_dim, query_dim, mask_dim)
        self.pixel_head = nn.Sequential(nn.Conv2d(pixel_dim, mask_dim, 1, bias=False),
                                        nn.BatchNorm2d(mask_dim))
        self.factorise = pixel_dim < mask_dim

    def forward(self, queries: torch.Tensor, pixels: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        kernels = self.mask_head(queries)
        b, _, h, w = pixels.shape
        if self.factorise and not self.training:
            weight, bias = affine_of(self.pixel_head)
            mask_logits = factorised_mask_logits(kernels, _flat(pixels), weight, bias)
        else:
            pixel_embed = F.normalize(self.pixel_head(pixels), dim=1)
            mask_logits = torch.bmm(kernels, _flat(pixel_embed).transpose(1, 2))
        return self.class_head(queries), mask_logits.view(b, -1, h, w)


def _flat(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, HW, C); a view when ``x`` is channels_last (no copy)."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def affine_of(pixel_head: nn.Sequential) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) with ``pixel_head(p) = W p + b`` per pixel: the 1x1 convolution, with the
    eval-mode batch norm after it folded in (unless it already was)."""
    conv = pixel_head[0]
    weight = conv.weight.flatten(1)
    bias = conv.bias if conv.bias is not None else weight.new_zeros(weight.shape[0])
    if len(pixel_head) > 1:
        bn = pixel_head[1]
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        weight, bias = weight * scale[:, None], (bias - bn.running_mean) * scale + bn.bias
    return weight, bias


def factorised_mask_logits(kernels: torch.Tensor, pixels: torch.Tensor, weight: torch.Tensor,
                           bias: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``kernels . v / max(|v|, eps)`` with ``v = W p + b``, computed at the width of ``p``.

    kernels (B, N, M), pixels (B, HW, C), weight (M, C), bias (M); returns (B, N, HW).
    With ``A = K W`` and ``c = K b``: ``K v = A p + c``, and ``|v|^2 = p.(W^T W) p +
    2 (W^T b).p + b.b``. For C < M this costs C/M of the direct way and never holds the
    (HW, M) embeddings. ``p.(W^T b)`` is written as a product and a sum rather than a
    matrix-vector product, which OpenVINO's MatMulMultiplyFusion pass cannot convert.
    """
    numerator = torch.bmm(kernels @ weight, pixels.transpose(1, 2)) + (kernels @ bias)[..., None]
    gram, cross = weight.T @ weight, weight.T @ bias
    squared = ((pixels @ gram) * pixels).sum(-1) + 2 * (pixels * cross).sum(-1) + bias @ bias
    return numerator / squared.clamp_min(0).sqrt().clamp_min(eps)[:, None, :]


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
