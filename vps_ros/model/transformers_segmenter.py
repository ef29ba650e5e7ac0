"""Pretrained panoptic Mask2Former, OneFormer, EoMT (EoMT-DINOv3) and VidEoMT models of
Hugging Face ``transformers`` as segmenter backends (EoMT's: :mod:`.eomt_segmenter`).

Both are mask transformers of kMaX-DeepLab's family (queries -> class + mask), so their
outputs feed the one mask-wise merge unchanged: ``class_queries_logits`` (C + 1, the
last "no object", as ours) and ``masks_queries_logits`` (stride 4 of the input). The
association embedding of a query is the transformer decoder's last output, layer-normed
as the class and mask heads see it: MinVIS (Huang et al., NeurIPS 2022) showed that
these per-query embeddings of an image-only Mask2Former match objects across frames
without video training; here they are the appearance features ``q`` of HiLA-MB
(Video-kMaX eq. 3-5; merge_masks L2-normalises them).

A model is a folder holding ``config.json`` and ``model.safetensors`` (as
``save_pretrained`` writes it or ``hf download`` fetches it) or ``hf:ORG/NAME[@REV]``,
resolved through the Hugging Face cache (downloaded when online, the cache alone with
``HF_HUB_OFFLINE=1``). Weights are read from safetensors only and no code of the
repository runs (never ``trust_remote_code``). ``transformers`` is imported only here,
when such a model is opened: it is the optional ``hf`` extra.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CheckpointError, ConfigError, first_line
from ..types import ClassTable
from .hub import is_hub_id, parse_hub_id
from .config import PostprocessConfig
from .eomt_segmenter import PRECISIONS, EomtSegmenter, VideomtSegmenter
from .label_tables import match_table
from .mask_segmenter import MaskSegmenter, autocast, resolve_device
from .options import LoadOptions

log = logging.getLogger(__name__)

#: The files of a model repository that are fetched: config, preprocessing, safetensors
#: weights and OneFormer's tokenizer; never pickled weights.
HUB_FILES = ["config.json", "preprocessor_config.json", "*.safetensors",
             "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
             "vocab.json", "merges.txt", "special_tokens_map.json"]
PICKLED = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5",
           "flax_model.msgpack")
#: Mask2Former's image processor's defaults (ImageNet statistics), used without a
#: preprocessor_config.json.
DEFAULT_MEAN = (0.485, 0.456, 0.406)
DEFAULT_STD = (0.229, 0.224, 0.225)
#: Input size without one given and without a size in the preprocessor config.
DEFAULT_INPUT_SIZE = (512, 1024)
#: Both models pad their input to a multiple of this (Swin's stride-32 stage).
SIZE_DIVISOR = 32
MASK_STRIDE = 4
#: OneFormer's task input (OneFormerProcessor: "the task is {task}").
TASK = "the task is panoptic"


@dataclass(frozen=True)
class Architecture:
    """How one ``transformers`` model type is run: ``build`` makes its segmenter from
    (model, architecture, class table, label index, preprocessing, options, folder,
    where)."""

    model_class: str
    build: Callable[..., "MaskSegmenter"]
    decoder_norm: str = ""  # Mask2Former/OneFormer: the decoder's output LayerNorm
    embeddings: str = ""    # Mask2Former/OneFormer: output field, last per-query states
    task_input: bool = False  # OneFormer: conditioned on "the task is panoptic"
    fixed_size: bool = False  # EoMT: the ViT takes image_size x image_size only
    complete: bool = False  # every tensor must come from the file (see _check_complete)


@dataclass(frozen=True)
class Preprocessing:
    """Pixel scaling of a model's image processor: ``(x * rescale - mean) / std``."""

    rescale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: tuple[int, int]

    @classmethod
    def of_folder(cls, folder: Path, where: str) -> "Preprocessing":
        """From ``preprocessor_config.json`` when the model has one, else Mask2Former's
        defaults. The default input size: the config's height x width when it gives
        both, else shortest_edge x min(longest_edge, 2 * shortest_edge) (the 1:2
        frames of driving cameras), rounded up to multiples of 32; without a size,
        512 x 1024."""
        path = folder / "preprocessor_config.json"
        data: dict[str, Any] = _read_json(path, where) if path.is_file() else {}
        rescale = float(data.get("rescale_factor", 1 / 255)) if data.get("do_rescale", True) \
            else 1.0
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        if data.get("do_normalize", True):
            mean = _triple(data.get("image_mean", DEFAULT_MEAN), f"{where}: image_mean")
            std = _triple(data.get("image_std", DEFAULT_STD), f"{where}: image_std")
        return cls(rescale, mean, std, _default_size(data.get("size")))


class TransformersSegmenter(MaskSegmenter):
    """A ``transformers`` panoptic Mask2Former / OneFormer (see the module docstring).

    ``label_index[j]`` is the model's label index of class ``j`` of ``classes`` (-1:
    the model never predicts it). ``task_inputs`` (OneFormer only) are the token ids
    of "the task is panoptic".
    """

    family = "transformers"  # no exporter for these networks: they run on torch

    def __init__(self, model: torch.nn.Module, architecture: Architecture, classes: ClassTable,
                 label_index: np.ndarray, preprocessing: Preprocessing,
                 input_size: tuple[int, int], device: str = "cpu",
                 postprocess: PostprocessConfig | None = None,
                 task_inputs: torch.Tensor | None = None, resize: str = "letterbox") -> None:
        super().__init__(classes, resolve_device(device), postprocess, resize)
        self._model = model.eval().to(self.device)
        self._architecture = architecture
        self._input_size = input_size
        self._norm = _attribute(self._model, architecture.decoder_norm)
        num_labels = int(self._model.config.num_labels)
        gather = np.append(np.where(label_index >= 0, label_index, num_labels), num_labels)
        self._gather = torch.as_tensor(gather, device=self.device)
        self._absent = torch.as_tensor(np.append(label_index < 0, False), device=self.device)
        self._mean = torch.tensor(preprocessing.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(preprocessing.std, device=self.device).view(1, 3, 1, 1)
        self._rescale = preprocessing.rescale
        self._task_inputs = None if task_inputs is None else task_inputs.to(self.device)

    @property
    def input_size(self) -> tuple[int, int]:
        return self._input_size

    def predict(self, batch: np.ndarray) -> dict[str, torch.Tensor]:
        height, width = batch.shape[1:3]
        pixels = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()
        pixels = (pixels * self._rescale - self._mean) / self._std
        # Pad (zeros after normalisation, as the image processor does) to the
        # backbone's stride; the masks are cropped back to the image's part.
        pad_h = -height % SIZE_DIVISOR
        pad_w = -width % SIZE_DIVISOR
        pixels = F.pad(pixels, (0, pad_w, 0, pad_h))
        inputs: dict[str, Any] = {"pixel_values": pixels}
        if self._architecture.task_input:
            inputs["task_inputs"] = self._task_inputs.expand(len(batch), -1)
        else:
            # Mask2Former computes its class logits from the intermediate states, which
            # it only returns with hidden states (its auxiliary loss asks for them).
            inputs["output_hidden_states"] = True
        with torch.inference_mode(), autocast(self.device):
            out = self._model(**inputs)
            embeddings = self._norm(getattr(out, self._architecture.embeddings))
        masks = out.masks_queries_logits[..., :math.ceil(height / MASK_STRIDE),
                                         :math.ceil(width / MASK_STRIDE)]
        logits = out.class_queries_logits.float()[..., self._gather]
        logits = logits.masked_fill(self._absent, float("-inf"))
        return {"class_logits": logits, "mask_logits": masks, "embeddings": embeddings}


def _build_mask2former(model, architecture: Architecture, table: ClassTable,
                       index: np.ndarray, preprocessing: Preprocessing,
                       options: LoadOptions, folder: Path, where: str
                       ) -> TransformersSegmenter:
    task_inputs = _task_inputs(_import_transformers(where), folder, model.config, where) \
        if architecture.task_input else None
    input_size = options.input_size or preprocessing.input_size
    if not options.input_size:
        log.info("%s: input size %dx%d (width x height, from its preprocessor config or "
                 "the default %dx%d; set input_height/input_width to change it)", where,
                 input_size[1], input_size[0], DEFAULT_INPUT_SIZE[1], DEFAULT_INPUT_SIZE[0])
    return TransformersSegmenter(model, architecture, table, index, preprocessing,
                                 input_size, options.device, options.postprocess,
                                 task_inputs, options.resize)


def _eomt_builder(segmenter: type[EomtSegmenter]) -> Callable[..., EomtSegmenter]:
    def build(model, architecture: Architecture, table: ClassTable, index: np.ndarray,
              preprocessing: Preprocessing, options: LoadOptions, folder: Path, where: str
              ) -> EomtSegmenter:
        if options.precision not in ("auto", "fp32", *PRECISIONS):
            raise ConfigError(f"{where}: precision {options.precision!r} is not one of auto, "
                              f"fp32, {', '.join(PRECISIONS)}")
        return segmenter(model, table, index, preprocessing, options.device,
                         options.postprocess, options.resize, options.precision)
    return build


ARCHITECTURES = {
    "mask2former": Architecture("Mask2FormerForUniversalSegmentation", _build_mask2former,
                                "model.transformer_module.decoder.layernorm",
                                "transformer_decoder_last_hidden_state"),
    "oneformer": Architecture("OneFormerForUniversalSegmentation", _build_mask2former,
                              "model.transformer_module.decoder.decoder_norm",
                              "transformer_decoder_object_queries", task_input=True),
    "eomt": Architecture("EomtForUniversalSegmentation", _eomt_builder(EomtSegmenter),
                         fixed_size=True, complete=True),
    "eomt_dinov3": Architecture("EomtDinov3ForUniversalSegmentation",
                                _eomt_builder(EomtSegmenter), fixed_size=True, complete=True),
    "videomt": Architecture("VideomtForUniversalSegmentation",
                            _eomt_builder(VideomtSegmenter), fixed_size=True, complete=True),
}


def load(source: str, options: LoadOptions) -> MaskSegmenter:
    """The registry's loader of ``transformers`` models (a folder or an ``hf:`` id).

    Every failure (not cached while offline, no config.json, another architecture,
    labels that fit no class table, pickled or corrupt weights) raises a
    :class:`~vps_ros.errors.VpsRosError` naming the model and what is wrong.
    """
    where = f"model {source!r}"
    folder = model_folder(source)
    config = read_config(folder, where)
    architecture = ARCHITECTURES[config["model_type"]]
    table, index = model_classes(config, options.classes, where)
    preprocessing = Preprocessing.of_folder(folder, where)
    if architecture.fixed_size:
        _check_fixed_size(config, options, where)
    transformers = _import_transformers(where)
    transformers.utils.logging.disable_progress_bar()
    check_weights(folder, where)
    model_class = getattr(transformers, architecture.model_class, None)
    if model_class is None:
        raise ConfigError(f"{where}: a {config['model_type']} model needs "
                          f"transformers.{architecture.model_class}, which transformers "
                          f"{transformers.__version__} lacks; install vps_ros[hf] (pinned)")
    try:
        model, info = model_class.from_pretrained(folder, use_safetensors=True,
                                                  local_files_only=True,
                                                  output_loading_info=True)
    except Exception as exc:  # corrupt or mismatched weights: any error of the loader
        raise CheckpointError(f"{where}: its weights cannot be loaded ({first_line(exc)})"
                              ) from None
    if architecture.complete:
        _check_complete(info.get("missing_keys", ()), config, where)
    return architecture.build(model, architecture, table, index, preprocessing, options,
                              folder, where)


def classes(source: str, options: LoadOptions) -> ClassTable:
    """The class table a model's outputs use, without loading its weights."""
    where = f"model {source!r}"
    return model_classes(read_config(model_folder(source), where), options.classes, where)[0]


def model_folder(source: str) -> Path:
    """The local folder of ``source``: the folder itself, or the cached snapshot of an
    ``hf:`` id (fetched when online; only config, preprocessing, safetensors and
    tokenizer files)."""
    if not is_hub_id(source):
        folder = Path(source)
        if not folder.is_dir():
            raise ConfigError(f"model {source!r}: no such folder")
        return folder
    repo, revision = parse_hub_id(source)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError,
                                        LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)
    offline = _offline()
    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=HUB_FILES,
                                      local_files_only=offline))
    except LocalEntryNotFoundError as exc:
        if isinstance(exc.__cause__, HfHubHTTPError):   # it answered, with a refusal (403)
            raise ConfigError(f"model {source!r}: the hub refused it "
                              f"({first_line(exc.__cause__)})") from None
        how = ("HF_HUB_OFFLINE=1 is set" if offline else
               "the Hugging Face hub could not be reached")
        fetch = f"hf download {repo}" + (f" --revision {revision}" if revision else "")
        raise ConfigError(f"model {source!r}: not in the Hugging Face cache and {how}; "
                          f"fetch it once on a machine online ({fetch}), or point the "
                          "model at a downloaded folder") from None
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise ConfigError(f"model {source!r}: {first_line(exc)}") from None
    except HfHubHTTPError as exc:
        raise ConfigError(f"model {source!r}: the hub refused it ({first_line(exc)})") from None


def read_config(folder: Path, where: str) -> dict[str, Any]:
    """``config.json`` of a model folder, checked to be a supported architecture."""
    path = folder / "config.json"
    if not path.is_file():
        raise ConfigError(f"{where}: {folder} has no config.json, so it is not a "
                          "transformers model folder (expected config.json + "
                          "model.safetensors, as save_pretrained or hf download write them)")
    config = _read_json(path, where)
    model_type = config.get("model_type")
    if model_type not in ARCHITECTURES:
        raise ConfigError(f"{where}: a {model_type or 'untyped'!s} model "
                          f"({', '.join(config.get('architectures') or []) or 'no architecture'})"
                          f"; vps_ros runs panoptic "
                          f"{', '.join(list(ARCHITECTURES)[:-1])} and "
                          f"{list(ARCHITECTURES)[-1]} models "
                          f"({', '.join(a.model_class for a in ARCHITECTURES.values())})")
    return config


def model_classes(config: dict[str, Any], classes: str, where: str
                  ) -> tuple[ClassTable, np.ndarray]:
    """(class table, label index) of a model's ``id2label`` (see label_tables)."""
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise ConfigError(f"{where}: config.json has no id2label, so its classes are unknown")
    try:
        labels = [str(id2label[key]) for key in sorted(id2label, key=int)]
    except ValueError:
        raise ConfigError(f"{where}: config.json id2label keys must be class numbers") from None
    table = None
    if classes:
        table = ClassTable.named(classes)
    return match_table(labels, where, table)


def _check_fixed_size(config: dict[str, Any], options: LoadOptions, where: str) -> None:
    """EoMT's position embeddings fix its input: image_size x image_size."""
    side = config.get("image_size")
    if not isinstance(side, int):
        raise ConfigError(f"{where}: config.json image_size must be one number (the side of "
                          f"the square input), got {side!r}")
    if options.input_size and tuple(options.input_size) != (side, side):
        height, width = options.input_size
        raise ConfigError(f"{where}: a {config['model_type']} model takes {side}x{side} "
                          f"input only (its position embeddings are fixed), not {width}x"
                          f"{height}; leave input_height/input_width at 0 (images are "
                          "letterboxed into it)")


def _check_complete(missing: Any, config: dict[str, Any], where: str) -> None:
    """EoMT's file must hold every tensor: a checkpoint saved without its ViT encoder
    (e.g. DINOv3's base weights, which come under their own licence) would otherwise
    run on random encoder weights, silently."""
    missing = sorted(str(key) for key in missing)
    if missing:
        shown = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
        raise CheckpointError(f"{where}: its weights lack {len(missing)} tensors of the "
                              f"{config['model_type']} network ({shown}); a checkpoint "
                              "without its base (encoder) weights cannot run: merge them "
                              "into model.safetensors first")


def check_weights(folder: Path, where: str) -> None:
    """Refuse a folder without safetensors weights (naming pickled ones it holds)."""
    if any(folder.glob("*.safetensors")):
        return
    pickled = [name for name in PICKLED if (folder / name).is_file()]
    if pickled:
        raise CheckpointError(f"{where}: holds only pickled weights ({', '.join(pickled)}), "
                              "which can run code when loaded; vps_ros reads safetensors "
                              "only (use a revision with model.safetensors, or convert it)")
    raise CheckpointError(f"{where}: {folder} has no safetensors weights (model.safetensors;"
                          " a hub repository without them is not fetched from: vps_ros never "
                          "loads pickled weights, which can run code when loaded)")


def _task_inputs(transformers, folder: Path, config, where: str) -> torch.Tensor:
    """Token ids of "the task is panoptic" (OneFormerProcessor's task input), from the
    tokenizer files that come with the model."""
    def unavailable(reason: str) -> ConfigError:
        return ConfigError(f"{where}: OneFormer is told its task by text (\"the task is "
                           "panoptic\"), which needs the tokenizer that comes with the model "
                           f"(tokenizer.json, or vocab.json + merges.txt): {reason}")

    if not ((folder / "tokenizer.json").is_file()
            or ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file())):
        # transformers would build an empty tokenizer instead, and the task token from it
        raise unavailable(f"{folder} has no tokenizer files, so the task cannot be given")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # unreadable tokenizer files
        raise unavailable(f"they cannot be read ({first_line(exc)})") from None
    if tokenizer.unk_token is not None and tokenizer.unk_token in tokenizer.tokenize(TASK):
        raise unavailable(f"its vocabulary does not hold the words of {TASK!r}")
    tokens = tokenizer([TASK], padding="max_length", max_length=int(config.task_seq_len),
                       truncation=True)
    # padding positions are 0, not the pad token (OneFormerProcessor: mask * ids)
    ids = torch.tensor(tokens["input_ids"]) * torch.tensor(tokens["attention_mask"])
    return ids.to(torch.float32)


def _import_transformers(where: str):
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"{where}: needs the optional transformers package: "
                          "pip install 'vps_ros[hf]'") from None
    return transformers


def _offline() -> bool:
    """HF_HUB_OFFLINE as set now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return constants.HF_HUB_OFFLINE or value in ("1", "true", "yes", "on")


def _default_size(size: Any) -> tuple[int, int]:
    if not isinstance(size, dict):
        return DEFAULT_INPUT_SIZE
    if "height" in size and "width" in size:
        height, width = int(size["height"]), int(size["width"])
    elif "shortest_edge" in size:
        height = int(size["shortest_edge"])
        width = min(int(size.get("longest_edge", 2 * height)), 2 * height)
    else:
        return DEFAULT_INPUT_SIZE
    return (-(-height // SIZE_DIVISOR) * SIZE_DIVISOR, -(-width // SIZE_DIVISOR) * SIZE_DIVISOR)


def _triple(value: Any, where: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3:
        raise ConfigError(f"{where}: expected three numbers (R, G, B), got {value!r}")
    return values  # type: ignore[return-value]


def _read_json(path: Path, where: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{where}: {path.name} is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {path.name} is not a JSON object")
    return data


def _attribute(obj: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj
