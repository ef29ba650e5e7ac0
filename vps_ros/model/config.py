"""Configuration of the segmenter: its architecture and its post-processing thresholds.

Both are validated config dataclasses (:mod:`vps_ros.config`). The architecture is
stored in every checkpoint, so a checkpoint rebuilds exactly the network that wrote it;
the post-processing thresholds are run-time settings (the node may change them between
frames through :attr:`vps_ros.model.Segmenter.postprocess`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import param
from ..errors import ConfigError


@dataclass(frozen=True)
class BackboneConfig:
    """Which backbone feeds the pixel decoder."""

    type: str = param("resnet", "resnet: our residual net (stem_width, widths, blocks); "
                      "transformers: a transformers AutoBackbone (ConvNeXt, ResNet, Swin)",
                      choices=("resnet", "transformers"))
    source: str = param("", "transformers: hf:ORG/NAME[@REVISION] (e.g. "
                        "hf:facebook/convnext-tiny-224) or a folder with config.json")
    pretrained: bool = param(False, "transformers: start from the source's (ImageNet) "
                             "weights; false: random init of its architecture")
    hf_config: str = param("", "transformers: the backbone's config as JSON, filled in by "
                           "training and stored in checkpoints (leave empty)")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the kMaX-style segmenter (seed 002, clip length 1)."""

    input_height: int = param(256, "height every image is resized to before the network", lo=32)
    input_width: int = param(512, "width every image is resized to before the network", lo=32)
    stem_width: int = param(16, "channels of the stride-2 stem convolution", lo=4)
    backbone: BackboneConfig = BackboneConfig()
    widths: list[int] = param([32, 64, 128, 192],
                              "backbone channels at strides 4, 8, 16, 32 (a transformers "
                              "backbone sets them from its config)", lo=4)
    blocks: list[int] = param([1, 1, 2, 1],
                              "residual blocks per backbone stage (strides 4, 8, 16, 32); the "
                              "strided stages have at least one", lo=0)
    decoder_widths: list[int] = param([128, 128, 64, 32, 16],
                                      "pixel-decoder channels at strides 32, 16, 8, 4, 2 (the "
                                      "final masks are at stride 2)", lo=4)
    context_layers: int = param(1, "self-attention layers over the stride-32 pixel features",
                                lo=0)
    num_queries: int = param(48, "object queries (cluster centres), shared by things and stuff",
                             lo=1)
    query_dim: int = param(128, "channels of the object queries", lo=8)
    num_heads: int = param(4, "heads of the query self-attention", lo=1)
    ffn_dim: int = param(256, "hidden channels of the query feed-forward network", lo=8)
    rounds: list[int] = param([2, 2, 2, 1],
                              "k-means cross-attention rounds at strides 32, 16, 8, 4", lo=0)
    mask_dim: int = param(64, "channels of the mask embeddings (query . pixel dot product)",
                          lo=4)
    embed_dim: int = param(64, "channels of the association embedding of every segment", lo=2)

    def __post_init__(self) -> None:
        for name, length in (("widths", 4), ("blocks", 4), ("decoder_widths", 5),
                             ("rounds", 4)):
            if len(getattr(self, name)) != length:
                raise ConfigError(f"model.{name}: expected {length} values, "
                                  f"got {list(getattr(self, name))}")
        if self.query_dim % self.num_heads:
            raise ConfigError(f"model.query_dim {self.query_dim} is not divisible by "
                              f"model.num_heads {self.num_heads}")
        if self.decoder_widths[0] % self.num_heads:
            raise ConfigError(f"model.decoder_widths[0] {self.decoder_widths[0]} is not "
                              f"divisible by model.num_heads {self.num_heads}")
        if self.input_height % 32 or self.input_width % 32:
            raise ConfigError(f"model input size {self.input_height}x{self.input_width} "
                              "must be a multiple of 32 (the backbone's output stride)")

    @property
    def input_size(self) -> tuple[int, int]:
        return self.input_height, self.input_width


@dataclass(frozen=True)
class PostprocessConfig:
    """Thresholds of the mask-wise merge that turns query predictions into segments.

    Queries are visited in order of decreasing class score; each pastes the pixels of
    its binarised mask that no earlier segment took (Panoptic FPN / kMaX inference).
    """

    class_threshold: float = param(0.5, "minimum class probability of a kept query",
                                   lo=0.0, hi=1.0)
    mask_threshold: float = param(0.6, "mask probability above which a pixel belongs to "
                                  "a query's mask", lo=0.0, hi=1.0)
    overlap_threshold: float = param(0.7, "minimum share of a mask not covered by earlier "
                                     "(higher-scoring) segments", lo=0.0, hi=1.0)
    min_area_thing: int = param(48, "minimum pixels of a thing segment (model resolution)",
                                lo=0)
    min_area_stuff: int = param(64, "minimum pixels of a stuff segment (model resolution)",
                                lo=0)
    merge_stuff: bool = param(True, "merge the stuff segments of one class into one segment")
    split_things: bool = param(True, "a thing segment's disconnected parts of at least "
                               "min_area_thing pixels become segments of their own (a query "
                               "that covered several objects of one class); smaller parts, "
                               "but the largest, become void")
    max_segments: int = param(100, "at most this many segments per frame", lo=1)
