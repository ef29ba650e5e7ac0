"""The training configuration (``config/train_*.yaml``), validated at load."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import from_mapping, load_yaml, param
from ..errors import ConfigError
from ..model.config import ModelConfig, PostprocessConfig

DATASET_TYPES = ("synthetic", "cityscapes-vps", "kitti-step", "vipseg", "rosbag2")


@dataclass(frozen=True)
class DatasetConfig:
    """Where frames come from: the synthetic generator or a real dataset reader."""

    type: str = param("synthetic", "synthetic generator or a real dataset format",
                      choices=DATASET_TYPES)
    path: str = param("", "folder or bag of a real dataset (unused for synthetic)")
    split: str = param("train", "split (synthetic: train, val, test, occlusion)",
                       choices=("train", "val", "test", "occlusion"))
    num_sequences: int = param(100, "synthetic sequences", lo=1)
    num_frames: int = param(16, "frames per synthetic sequence", lo=1)
    height: int = param(256, "synthetic frame height", lo=16)
    width: int = param(512, "synthetic frame width", lo=16)
    max_frames: int = param(0, "use at most this many annotated frames (0: all)", lo=0)
    first_sequence: int = param(0, "synthetic: index of the first sequence within the split "
                                "(seeds split base + first_sequence ..), e.g. to draw "
                                "sequences disjoint from another dataset of the same split",
                                lo=0)
    difficulty: str = param("", "synthetic: the events of another split's sequences "
                            "(occlusion: a 20-30 frame full occlusion in every sequence, "
                            "needs num_frames >= 40); empty: the split's own",
                            choices=("", "standard", "occlusion"))
    max_pair_gap: int = param(0, "largest frame distance within a pair drawn from this "
                              "dataset (0: augment.max_pair_gap); long gaps teach the "
                              "association embedding to re-find a thing after an occlusion",
                              lo=0)
    image_topic: str = param("/camera/image_raw", "rosbag2: the camera image topic")
    gt_topic: str = param("/gt/panoptic", "rosbag2: the ground-truth panoptic topic")


@dataclass(frozen=True)
class ValDatasetConfig(DatasetConfig):
    """The validation frames: by default a few sequences of the synthetic val split."""

    split: str = param("val", "split (synthetic: train, val, test, occlusion)",
                       choices=("train", "val", "test", "occlusion"))
    num_sequences: int = param(4, "synthetic sequences", lo=1)
    num_frames: int = param(8, "frames per synthetic sequence", lo=1)


@dataclass(frozen=True)
class DataConfig:
    train: DatasetConfig = DatasetConfig()
    extra: list[DatasetConfig] = param([], "more training datasets, sampled together with "
                                       "train (their frames count as train's do)")
    val: ValDatasetConfig = ValDatasetConfig()


@dataclass(frozen=True)
class ClassWeight:
    """A weight for one class, named as in the dataset's class table."""

    name: str = param("", "class name (e.g. cyclist)")
    weight: float = param(1.0, "weight relative to the other classes' 1", lo=0.0, lo_open=True)


@dataclass(frozen=True)
class SamplingConfig:
    """Which frames and which part of them a batch holds: rare, small classes
    (pedestrians, cyclists) drawn more often and at a higher resolution.

    A frame's sampling weight is the largest ``frame_weights`` weight of the classes it
    shows with at least ``min_pixels`` pixels (1 when none), so a frame with a cyclist
    is drawn ``weight`` times as often as one without (repeat-factor sampling in the
    spirit of LVIS, Gupta et al. 2019, per frame). With probability ``focus_crop`` the
    crop of each frame of a pair is placed on a segment of a ``frame_weights`` class
    (the same track in both frames where it can), rescaled by ``focus_scale``.
    """

    frame_weights: list[ClassWeight] = param([], "sampling weight of frames showing a class")
    min_pixels: int = param(64, "pixels of a class for a frame to count as showing it",
                            lo=1)
    focus_crop: float = param(0.0, "probability of a crop placed on a weighted class's "
                              "segment", lo=0.0, hi=1.0)
    focus_scale: list[float] = param([1.0, 2.0], "rescale range (min, max) of a focus crop "
                                     "(> 1: the segment at a higher resolution)", lo=0.05)


@dataclass(frozen=True)
class StageConfig:
    """One step of the resolution curriculum."""

    steps: int = param(1000, "optimizer steps of this stage", lo=1)
    crop: list[int] = param([256, 512], "crop (height, width), multiples of 32", lo=32)
    pairs: int = param(4, "frame pairs per batch (a batch holds twice as many frames)", lo=1)
    scale: list[float] = param([0.75, 1.25], "random rescale range (min, max) before the crop",
                               lo=0.05)


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = param(0.5, "probability of a horizontal flip", lo=0.0, hi=1.0)
    brightness: float = param(0.25, "max relative brightness change", lo=0.0, hi=1.0)
    contrast: float = param(0.25, "max relative contrast change", lo=0.0, hi=1.0)
    saturation: float = param(0.25, "max relative saturation change", lo=0.0, hi=1.0)
    max_pair_gap: int = param(4, "largest frame distance between the two frames of a pair",
                              lo=1)


@dataclass(frozen=True)
class LossConfig:
    """Loss weights (Mask2Former / kMaX defaults) and the association loss settings."""

    class_weight: float = param(2.0, "classification (cross-entropy) weight", lo=0.0)
    no_object_weight: float = param(0.1, "relative weight of the no-object class", lo=0.0)
    bce_weight: float = param(5.0, "mask binary cross-entropy weight", lo=0.0)
    dice_weight: float = param(5.0, "mask dice weight", lo=0.0)
    mask_id_weight: float = param(1.0, "pixel-wise cross-entropy over queries (kMaX mask-id "
                                  "loss; trains the cluster assignment)", lo=0.0)
    semantic_weight: float = param(1.0, "auxiliary semantic head weight", lo=0.0)
    track_weight: float = param(1.0, "association contrastive loss weight (seed 004 eq. 1)",
                                lo=0.0)
    track_aux_weight: float = param(1.0, "association cosine L2 loss weight (seed 004 eq. 2)",
                                    lo=0.0)
    track_temperature: float = param(0.1, "temperature of the contrastive loss on "
                                     "L2-normalised embeddings", lo=0.0, lo_open=True)
    deep_supervision: bool = param(True, "supervise every k-means round, not only the output")
    class_weights: list[ClassWeight] = param([], "weights of classes in the classification "
                                             "cross-entropy and of their segments' mask "
                                             "losses (others 1)")


@dataclass(frozen=True)
class OptimConfig:
    lr: float = param(1e-3, "peak AdamW learning rate", lo=0.0, lo_open=True)
    weight_decay: float = param(0.05, "AdamW weight decay (not on norms and biases)", lo=0.0)
    warmup_steps: int = param(200, "linear warm-up steps", lo=0)
    final_lr_ratio: float = param(0.01, "learning rate at the end, relative to the peak "
                                  "(polynomial decay, power 0.9)", lo=0.0, hi=1.0)
    grad_clip: float = param(1.0, "gradient norm clipping (0: off)", lo=0.0)
    backbone_lr_ratio: float = param(1.0, "learning rate of the backbone relative to the rest "
                                     "(kMaX-DeepLab: 0.1 for a pretrained backbone)",
                                     lo=0.0, lo_open=True)
    accumulate: int = param(1, "micro-batches per optimizer step on every rank (gradient "
                            "accumulation): a global batch larger than memory", lo=1)


@dataclass(frozen=True)
class LoaderConfig:
    """The torch DataLoader that decodes and augments frames in worker processes."""

    workers: int = param(2, "worker processes per rank (0: in the training process)", lo=0)
    prefetch: int = param(2, "micro-batches each worker prepares ahead", lo=1)
    pin_memory: bool = param(True, "page-locked batches (faster copies to a GPU)")
    start_method: str = param("forkserver", "how workers start: forkserver and spawn start "
                              "from a clean process (safe with CUDA and with threads of "
                              "OpenCV or tqdm in the trainer); fork is quickest to start",
                              choices=("forkserver", "spawn", "fork"))


@dataclass(frozen=True)
class DistributedConfig:
    """Several processes under torchrun (ignored in a one-process run)."""

    sync_batchnorm: bool = param(True, "batch-norm statistics over the whole global batch "
                                 "(torch's SyncBatchNorm runs on GPUs only: per-rank "
                                 "statistics on CPUs)")
    timeout_minutes: float = param(30.0, "how long a rank waits for the others (e.g. "
                                   "while rank 0 validates) before failing", lo=0.0,
                                   lo_open=True)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = param(0, "seed of weights init, sampling and augmentation", lo=0)
    device: str = param("cpu", "cpu or cuda (falls back to cpu with a warning)")
    mixed_precision: bool = param(True, "autocast to amp_dtype (float16: on CUDA only, "
                                  "ignored on the CPU)")
    amp_dtype: str = param("float16", "mixed precision type: float16 (CUDA, with a gradient "
                           "scaler) or bfloat16 (CUDA or CPU)", choices=("float16", "bfloat16"))
    threads: int = param(0, "torch CPU threads (0: torch's default)", lo=0)
    out_dir: str = param("runs/train", "folder of checkpoints and logs (relative to the cwd)")
    export: str = param("", "also write the final model here (e.g. models/x.pt)")
    init: str = param("", "start from the weights of this checkpoint (same architecture and "
                      "classes; e.g. models/default.pt to fine-tune it); --resume wins")
    val_every: int = param(500, "validate (PQ on the val frames) every this many steps", lo=1)
    checkpoint_every: int = param(250, "write the resume checkpoint every this many steps",
                                  lo=1)
    log_every: int = param(10, "TensorBoard scalars every this many steps", lo=1)
    tensorboard: bool = param(True, "write TensorBoard event files to OUT_DIR/tensorboard")
    curriculum: list[StageConfig] = param([StageConfig()], "stages run one after another")
    model: ModelConfig = ModelConfig()
    postprocess: PostprocessConfig = PostprocessConfig()
    data: DataConfig = DataConfig()
    augment: AugmentConfig = AugmentConfig()
    loss: LossConfig = LossConfig()
    sampling: SamplingConfig = SamplingConfig()
    optim: OptimConfig = OptimConfig()
    loader: LoaderConfig = LoaderConfig()
    distributed: DistributedConfig = DistributedConfig()

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.curriculum)

    def stage_of(self, step: int) -> StageConfig:
        """The curriculum stage that optimizer step ``step`` (from 0) belongs to."""
        for stage in self.curriculum:
            if step < stage.steps:
                return stage
            step -= stage.steps
        return self.curriculum[-1]


def load_train_config(path: str | Path, overrides: dict | None = None,
                      kind: type[TrainConfig] = TrainConfig) -> TrainConfig:
    """The training config in ``path``; ``overrides`` replace top-level keys; ``kind``
    is TrainConfig or a recipe that extends it (:mod:`.recipes`)."""
    mapping = {**load_yaml(path), **(overrides or {})}
    try:
        config = from_mapping(kind, mapping, str(path))
    except ConfigError as exc:
        raise ConfigError(exc if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    for i, stage in enumerate(config.curriculum):
        if len(stage.crop) != 2 or any(v % 32 for v in stage.crop):
            raise ConfigError(f"{path}: curriculum[{i}].crop must be two multiples of 32, "
                              f"got {stage.crop}")
        if len(stage.scale) != 2 or stage.scale[0] > stage.scale[1]:
            raise ConfigError(f"{path}: curriculum[{i}].scale must be (min, max), "
                              f"got {stage.scale}")
    scale = config.sampling.focus_scale
    if len(scale) != 2 or scale[0] > scale[1]:
        raise ConfigError(f"{path}: sampling.focus_scale must be (min, max), got {scale}")
    for i, data in enumerate([config.data.train, *config.data.extra]):
        where = "data.train" if i == 0 else f"data.extra[{i - 1}]"
        if data.type != "synthetic" and (data.difficulty or data.first_sequence):
            raise ConfigError(f"{path}: {where}: difficulty and first_sequence apply to "
                              f"synthetic data only, not {data.type!r}")
        if data.difficulty == "occlusion" and data.num_frames < 40:
            raise ConfigError(f"{path}: {where}: difficulty occlusion needs num_frames >= 40 "
                              f"(a 20-30 frame full occlusion), got {data.num_frames}")
    return config


def class_weight_vector(weights: list[ClassWeight], names: list[str], where: str
                        ) -> list[float]:
    """Per class id the weight of ``weights`` (1 for classes not named); ConfigError for a
    name not in the class table ``names``."""
    vector = [1.0] * len(names)
    for entry in weights:
        if entry.name not in names:
            raise ConfigError(f"{where}: class {entry.name!r} is not in the class table "
                              f"({', '.join(names)})")
        vector[names.index(entry.name)] = entry.weight
    return vector
