"""A ``transformers`` ``AutoBackbone`` (ConvNeXt, ResNet, Swin, ...) as the segmenter's
backbone, ImageNet-pretrained or randomly initialised.

Its features at strides 4, 8, 16 and 32 (the last four stages) go into the same pixel
decoder as those of our residual net; the stride-2 features that the decoder also
fuses come from one strided convolution on the image (these backbones start at
stride 4). The backbone's whole ``transformers`` config is kept as JSON in the model
config (``backbone.hf_config``), so a checkpoint rebuilds the network with no network
access and no download; its weights come from the checkpoint's state dict.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, first_line
from .backbone import ConvBNReLU
from .config import ModelConfig
from .hub import is_hub_id, parse_hub_id

STAGES = 4  # strides 4, 8, 16, 32


class TransformersBackbone(nn.Module):
    """Features at strides 2 (``stem2``), 4, 8, 16, 32 (``body``, an AutoBackbone)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not config.backbone.hf_config:
            raise ConfigError("model.backbone: a transformers backbone needs its config "
                              "(resolve model.backbone.source with resolve_backbone first)")
        from transformers import AutoBackbone
        self.stem2 = ConvBNReLU(3, config.stem_width, 3, 2)
        self.body = AutoBackbone.from_config(config_from_json(config.backbone.hf_config))
        if list(self.body.channels) != list(config.widths):
            raise ConfigError(f"model.widths {list(config.widths)} differ from the transformers "
                              f"backbone's channels {list(self.body.channels)}")

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        return [self.stem2(image), *self.body(image).feature_maps]


def config_from_json(text: str) -> Any:
    """The ``transformers`` config stored as JSON (no file or network access)."""
    from transformers import AutoConfig
    try:
        mapping = json.loads(text)
        return AutoConfig.for_model(mapping.pop("model_type"), **mapping)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:  # JSONDecodeError too
        raise ConfigError(f"model.backbone.hf_config: not a transformers backbone config "
                          f"this version understands ({first_line(exc)})") from None


def resolve_backbone(model: ModelConfig) -> tuple[ModelConfig, dict[str, torch.Tensor] | None]:
    """``model`` with a transformers backbone's config (``hf_config``) and channels
    (``widths``) filled in from ``backbone.source``, and with ``pretrained`` the source's
    weights for :attr:`TransformersBackbone.body` (else None). Our residual net needs
    nothing: ``model`` comes back as it is.

    A hub source (``hf:ORG/NAME[@REVISION]``) is read through the ``transformers`` cache:
    downloaded when online, from the cache alone with ``HF_HUB_OFFLINE=1``. Weights are
    read from safetensors files only.
    """
    backbone = model.backbone
    if backbone.type != "transformers":
        return model, None
    if not backbone.source:
        raise ConfigError("model.backbone.source: a transformers backbone needs a source, "
                          "e.g. hf:facebook/convnext-tiny-224 or a folder with config.json")
    name, kwargs = _location(backbone.source)
    from transformers import AutoBackbone, AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_BACKBONE_MAPPING
    try:
        config = AutoConfig.from_pretrained(name, **kwargs)
        config.out_features = list(config.stage_names[-STAGES:])
        if backbone.pretrained:
            # the backbone class itself: AutoBackbone.from_pretrained asks the hub whether
            # the repository exists, even offline
            body = MODEL_FOR_BACKBONE_MAPPING[type(config)].from_pretrained(
                name, config=config, use_safetensors=True, **kwargs)
            state = body.state_dict()
        else:
            body, state = AutoBackbone.from_config(config), None
    except OSError as exc:
        raise ConfigError(f"model.backbone.source {backbone.source!r}: cannot be read "
                          f"({first_line(exc)}); when offline (HF_HUB_OFFLINE=1) it must "
                          "be in the transformers cache") from None
    except (ValueError, KeyError, AttributeError) as exc:
        raise ConfigError(f"model.backbone.source {backbone.source!r}: not a backbone "
                          f"transformers knows ({first_line(exc)})") from None
    resolved = dataclasses.replace(backbone, hf_config=config.to_json_string(use_diff=False))
    return dataclasses.replace(model, backbone=resolved, widths=list(body.channels)), state


def _location(source: str) -> tuple[str, dict[str, Any]]:
    """(name or folder, keyword arguments) for ``from_pretrained``."""
    if is_hub_id(source):
        repo, revision = parse_hub_id(source)
        return repo, {"revision": revision} if revision else {}
    path = Path(source)
    if not (path / "config.json").is_file():
        raise ConfigError(f"model.backbone.source {source!r}: neither a hub id "
                          f"(hf:ORG/NAME[@REVISION]) nor a folder with config.json")
    return str(path), {"local_files_only": True}
