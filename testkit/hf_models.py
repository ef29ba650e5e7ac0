"""Tiny Mask2Former and OneFormer models of ``transformers``, built from configs with
random weights and saved as a user's download would be (config.json, model.safetensors,
preprocessor_config.json; OneFormer with its tokenizer files). Their outputs show that
the plumbing works, never segmentation quality."""
from __future__ import annotations

import json
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"   # no test downloads anything

import torch  # noqa: E402
from transformers import (CLIPTokenizer, Mask2FormerConfig,  # noqa: E402
                          Mask2FormerForUniversalSegmentation, OneFormerConfig,
                          OneFormerForUniversalSegmentation, SwinConfig)

#: The synthetic table's class names (config/classes_synthetic.yaml) as a model might
#: spell them.
LABELS = ["Road", "Sidewalk", "building", "vegetation", "terrain", "sky", "car", "truck",
          "pedestrian", "cyclist"]
MEAN = [0.5, 0.4, 0.3]
STD = [0.2, 0.25, 0.3]
#: The transformer decoder's output LayerNorm (Mask2Former, OneFormer).
DECODER_NORM = ("decoder.layernorm.weight", "decoder.layernorm.bias",
                "decoder.decoder_norm.weight", "decoder.decoder_norm.bias")
TASK_WORDS = ["the", "task", "is", "panoptic", "semantic", "instance"]


def _backbone() -> SwinConfig:
    return SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4,
                      image_size=64, out_features=["stage1", "stage2", "stage3", "stage4"])


def _labels(labels: list[str]) -> dict:
    return {"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}


def save_mask2former(folder: Path, labels: list[str] = LABELS, seed: int = 0,
                     num_queries: int = 16, size: dict | None = None) -> Path:
    """A random tiny panoptic Mask2Former in ``folder``."""
    torch.manual_seed(seed)
    config = Mask2FormerConfig(backbone_config=_backbone(), num_queries=num_queries,
                               hidden_dim=32, mask_feature_size=32, feature_size=32,
                               encoder_feedforward_dim=64, dim_feedforward=64,
                               decoder_layers=2, encoder_layers=1, num_attention_heads=2,
                               **_labels(labels))
    _sharpen(Mask2FormerForUniversalSegmentation(config)).save_pretrained(folder)
    _preprocessor(folder, "Mask2FormerImageProcessor", size or {"height": 64, "width": 128})
    return folder


def save_oneformer(folder: Path, labels: list[str] = LABELS, seed: int = 0,
                   tokenizer: bool = True) -> Path:
    """A random tiny panoptic OneFormer in ``folder``, with a CLIP tokenizer whose
    vocabulary holds the task words (as the released models ship theirs)."""
    torch.manual_seed(seed)
    config = OneFormerConfig(backbone_config=_backbone(), num_queries=16, hidden_dim=32,
                             mask_dim=32, conv_dim=32, encoder_feedforward_dim=64,
                             dim_feedforward=64, decoder_layers=2, encoder_layers=1,
                             num_attention_heads=2, text_encoder_width=32,
                             text_encoder_num_layers=1, task_seq_len=16,
                             text_encoder_context_length=16, **_labels(labels))
    _sharpen(OneFormerForUniversalSegmentation(config)).save_pretrained(folder)
    _preprocessor(folder, "OneFormerImageProcessor", {"height": 64, "width": 128})
    if tokenizer:
        _save_tokenizer(folder)
    return folder


def _sharpen(model: torch.nn.Module) -> torch.nn.Module:
    """Scale the class head and the last mask-embedding layer up, so that a random model
    decides its classes and masks as a trained one does (at its initial scale every
    class has ~10 % and every mask logit is ~0), and give the decoder's output LayerNorm
    an affine part of its own (a new one is the identity). Still random: proves
    plumbing only."""
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.endswith(("class_predictor.weight", "class_embed.weight")):
                weight.mul_(20.0)
            elif name.endswith(("mask_embedder.2.0.weight", "mask_embed.layers.2.0.weight")):
                weight.mul_(40.0)
            elif name.endswith(DECODER_NORM):
                weight.copy_(torch.rand_like(weight) + 0.5 if name.endswith("weight")
                             else torch.randn_like(weight) * 0.5)
    return model


def _preprocessor(folder: Path, name: str, size: dict) -> None:
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": name, "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": MEAN, "image_std": STD, "size": size,
        "size_divisor": 32}))


def _save_tokenizer(folder: Path) -> None:
    """A byte-pair vocabulary of single letters merged up to the task words."""
    letters = sorted(set("".join(TASK_WORDS)))
    vocab = {t: i for i, t in enumerate(letters + [c + "</w>" for c in letters])}
    merges = []
    for word in TASK_WORDS:
        piece = word[0]
        for k, letter in enumerate(word[1:], 1):
            nxt = letter + "</w>" if k == len(word) - 1 else letter
            merges.append(f"{piece} {nxt}")
            piece += nxt
            vocab.setdefault(piece, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges))
                                       + "\n")
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                  pad_token="<|endoftext|>").save_pretrained(folder)


def _eomt_sizes(image_size: int) -> dict:
    """A two-block ViT with 8 queries, on image_size x image_size input."""
    return dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, image_size=image_size,
                patch_size=16, num_blocks=1, num_queries=8, num_register_tokens=2)


def save_eomt(folder: Path, labels: list[str] = LABELS, seed: int = 0, image_size: int = 64,
              kind: str = "eomt") -> Path:
    """A random tiny panoptic EoMT (``kind`` eomt), EoMT-DINOv3 (eomt_dinov3) or
    VidEoMT (videomt) in ``folder``, with an EoMT image processor config."""
    import transformers
    config_class, model_class = {
        "eomt": ("EomtConfig", "EomtForUniversalSegmentation"),
        "eomt_dinov3": ("EomtDinov3Config", "EomtDinov3ForUniversalSegmentation"),
        "videomt": ("VideomtConfig", "VideomtForUniversalSegmentation")}[kind]
    torch.manual_seed(seed)
    extra = {"intermediate_size": 64} if kind == "eomt_dinov3" else {"mlp_ratio": 2}
    config = getattr(transformers, config_class)(**_eomt_sizes(image_size), **extra,
                                                 **_labels(labels))
    model = getattr(transformers, model_class)(config)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.startswith("class_predictor"):
                weight.mul_(20.0)
            elif name.startswith("mask_head.fc3"):
                weight.mul_(10.0)
    model.save_pretrained(folder)
    _preprocessor(folder, "EomtImageProcessor",
                  {"shortest_edge": image_size, "longest_edge": image_size})
    return folder


def drop_encoder(folder: Path) -> None:
    """Rewrite an EoMT folder's weights without its ViT encoder (patch embeddings and
    blocks), as a checkpoint shipped without its base weights would be."""
    from safetensors.torch import load_file, save_file
    weights = load_file(folder / "model.safetensors")
    kept = {k: v for k, v in weights.items() if not k.startswith(("embeddings.", "layers."))}
    save_file(kept, folder / "model.safetensors", metadata={"format": "pt"})
