"""The config schema: every key's type, default and allowed values, in one place.

Each config group option is a dataclass registered in Hydra's ConfigStore as `base_<option>` and extended by
its YAML file in conf/ (which sets only what differs from the defaults here). A field's metadata says what
values are allowed (`check`) and whether the key can change a run's results (`neutral`: output paths,
logging, progress bars, loader workers... may differ between a run and its resume, and are left out of a
study's run key). `seg.config.typed_config` checks a composed config against this schema before any work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any  # noqa: UP035 -- OmegaConf reads Optional[...] from the annotations

from omegaconf import MISSING

from seg import constants
from seg.registry import Registry

Check = tuple[Callable[[Any], bool], str]


def knob(
    default: Any = MISSING, check: Check | None = None, neutral: bool = False, keyed_once_set: bool = False
) -> Any:
    """A schema field: its default, its allowed values (predicate, text) and whether it is result-neutral.

    keyed_once_set: a key added after runs were keyed; at its default it is left out of a run's key
    (seg.config.result_items), so the runs made before it keep their keys."""
    kwargs = {"default_factory": lambda: list(default)} if isinstance(default, list) else {"default": default}
    return field(**kwargs, metadata={"check": check, "neutral": neutral, "keyed_once_set": keyed_once_set})


def one_of(*allowed: Any) -> Check:
    return (lambda v: v in allowed), ", ".join(str(a) for a in allowed)


def option_name(name: str) -> Any:
    """The `name` field of a config group option's dataclass: the option it is (the registry reads it from here)."""
    return knob(name, one_of(name))


def at_least(low: float, integer: bool = True) -> Check:
    return (lambda v: v >= low), f"{'an integer' if integer else 'a number'} >= {low:g}"


def between(low: int, high: int, why: str) -> Check:
    """An integer in [low, high]; `why` says what the upper bound protects (memory, processes)."""
    return (lambda v: low <= v <= high), f"an integer in [{low}, {high}] ({why})"


def machine_workers() -> int:
    """The most loader worker processes this machine is asked to start: 8 per CPU this process may use."""
    return 8 * len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 8 * (os.cpu_count() or 1)


IMAGE_SIZE = between(1, 4096, "one image of this side takes 3*side^2 floats, and the model's activations scale with it")
BATCH_SIZE = between(1, 4096, "every item of a batch is held in memory at once")
WIDTH = between(1, 1024, "the model's weights grow with its width squared")
EPOCHS = between(1, 100_000, "a run's length")
WORKERS: Check = (
    lambda v: 0 <= v <= machine_workers(),
    f"an integer in [0, {machine_workers()}]: each worker is a process, and this machine has "
    f"{machine_workers() // 8} CPUs for this process (8 workers per CPU at most)",
)
POSITIVE: Check = (lambda v: v > 0, "a number > 0")
FRACTION: Check = (lambda v: 0 < v < 1, "a number in (0, 1)")
UNIT: Check = (lambda v: 0 <= v <= 1, "a number in [0, 1]")
PAIR_IN_UNIT: Check = (lambda v: len(v) == 2 and 0 < v[0] <= v[1] <= 1, "two numbers 0 < a <= b <= 1")
PAIR_POSITIVE: Check = (lambda v: len(v) == 2 and 0 < v[0] <= v[1], "two numbers 0 < a <= b")
UNCERTAIN_MODES = constants.UNCERTAIN_MODES
BAD_SAMPLE_POLICIES = ("skip", "raise")
SPLITS = ("train", "val", "test")
DEVICE: Check = (
    lambda v: v in ("auto", "cpu", "cuda", "mps") or (v.startswith("cuda:") and v[5:].isdigit()),
    "auto, cpu, cuda, cuda:N or mps",
)
UPSAMPLE = one_of("transpose", "bilinear")
TTA = one_of("none", "hflip", "flips")  # seg.inference.TTA_FLIPS: none; hflip; hflip, vflip and both
CHECKPOINTS: Check = (
    lambda v: isinstance(v, str) or (isinstance(v, list) and len(v) > 0 and all(isinstance(p, str) for p in v)),
    "a checkpoint path, or a list of them: ckpt=[a.pt,b.pt]",
)


# --- data --------------------------------------------------------------------------------------------------
@dataclass
class SyntheticConfig:
    """The synthetic-pets generator: number of images and its seed."""

    n: int = knob(300, at_least(8))
    seed: int = 0


@dataclass
class SplitListsConfig:
    """A folder dataset's split lists: text files of stems (relative paths are read under data.root)."""

    train: str | None = knob(None, keyed_once_set=True)
    val: str | None = knob(None, keyed_once_set=True)
    test: str | None = knob(None, keyed_once_set=True)


MASK_CLASSES = ("foreground", "background", "ignore")
MASK_VALUES: Check = (
    lambda v: isinstance(v, dict) and all(c in MASK_CLASSES for c in v.values()),
    "a map from mask values (0-255) or colours (R-G-B, '#rrggbb') to foreground, background or ignore, "
    "e.g. {0:background,255:foreground,128:ignore}",
)


@dataclass
class DataConfig:
    name: str = knob("oxford_pet", one_of("oxford_pet", "synthetic", "folder"))
    root: str = "${paths.data_dir}/oxford-iiit-pet"
    download: bool = knob(False, neutral=True)
    image_size: int = knob(256, IMAGE_SIZE)
    batch_size: int = knob(32, BATCH_SIZE)
    num_workers: int = knob(2, WORKERS, neutral=True)
    uncertain: str = knob("foreground", one_of(*UNCERTAIN_MODES))
    val_split: float | None = knob(None, FRACTION)
    limit: int | None = knob(None, at_least(1))
    on_bad_sample: str = knob("skip", one_of(*BAD_SAMPLE_POLICIES))
    cache: bool = knob(True, neutral=True)
    synthetic: SyntheticConfig | None = None
    # the layout (seg/data/layout.py): oxford (images/ + annotations/) or folder (images/ + masks/, conf/data/folder)
    layout: str = knob("oxford", one_of("oxford", "folder"), keyed_once_set=True)
    # folder, a dict (typed Any: Hydra cannot merge an override into a null Dict node); null: 0 bg, 1 and 255 fg
    mask_values: Any = knob(None, MASK_VALUES, keyed_once_set=True)
    mask_suffix: str = knob("", keyed_once_set=True)  # folder: masks/<stem><suffix>.png, e.g. _mask
    splits: SplitListsConfig = field(default_factory=SplitListsConfig)
    test_split: float = knob(0.2, FRACTION, keyed_once_set=True)  # folder without a test list: this fraction
    split_seed: int = knob(0, keyed_once_set=True)  # seeds the folder's random test split and the folds
    folds: int | None = knob(None, at_least(2), keyed_once_set=True)  # k-fold: train+val in K folds ...
    fold: int | None = knob(None, at_least(0), keyed_once_set=True)  # ... and fold i is val (test untouched)
    stratify: bool = knob(False, keyed_once_set=True)  # folds stratified by foreground fraction


# --- model -------------------------------------------------------------------------------------------------
MODELS = Registry("model", "an nn.Module: images (N, 3, H, W) -> logits (N, 1, H, W)")
@MODELS.option("seg.models.unet:UNet")
@dataclass
class UNetConfig:
    name: str = option_name("unet")
    base_channels: int = knob(64, WIDTH)
    upsample: str = knob("transpose", UPSAMPLE)


@MODELS.option("seg.models.resnet_unet:ResNet34UNet")
@dataclass
class ResNet34UNetConfig:
    name: str = option_name("resnet34_unet")
    base_channels: int = knob(64, (lambda v: 4 <= v <= 1024 and v % 4 == 0, "a multiple of 4 in [4, 1024] (64: "
                                   "torchvision's)"))  # fmt: skip
    encoder_weights: str | None = knob(None, one_of("imagenet"))
    upsample: str = knob("transpose", UPSAMPLE)


@MODELS.option("seg.models.smp:SmpModel")
@dataclass
class SmpConfig:
    """segmentation_models_pytorch (the [smp] extra): arch and encoder are checked against smp itself (close names
    on a typo), with the image size (a multiple of 2**encoder_depth); see seg/models/smp.py."""

    name: str = option_name("smp")
    arch: str = "unet"  # unet, unetplusplus, manet, linknet, fpn, pspnet, deeplabv3, deeplabv3plus, pan, upernet...
    encoder: str = "resnet34"  # any smp encoder (resnet18, efficientnet-b0, mit_b0...) or tu-<timm model>
    encoder_weights: str | None = None  # null (random init) or one the encoder has: imagenet, ssl, ...
    encoder_depth: int = knob(5, (lambda v: 3 <= v <= 5, "an integer in [3, 5]"))
    base_channels: int | None = knob(None, WIDTH)  # decoder width scale; null: smp's default decoder (= 16)
    decoder_attention: str | None = knob(None, one_of("scse"))  # unet and unetplusplus only


# --- augmentation (knobs of the presets in seg/data/transforms.py) -----------------------------------------
AUGMENTATIONS = Registry("augmentation", "a preset: preset(image_size, **knobs) -> albumentations transforms")
@AUGMENTATIONS.option("seg.data.transforms:preset_none")
@dataclass
class NoAugmentation:
    name: str = option_name("none")


@AUGMENTATIONS.option("seg.data.transforms:preset_basic")
@dataclass
class BasicAugmentation:
    name: str = option_name("basic")
    hflip_p: float = knob(0.5, UNIT)
    vflip_p: float = knob(0.5, UNIT)
    jitter_p: float = knob(1.0, UNIT)
    brightness: float = knob(0.2, UNIT)
    contrast: float = knob(0.2, UNIT)
    saturation: float = knob(0.2, UNIT)
    hue: float = knob(0.0, (lambda v: 0 <= v <= 0.5, "a number in [0, 0.5]"))


@AUGMENTATIONS.option("seg.data.transforms:preset_strong")
@dataclass
class StrongAugmentation:
    name: str = option_name("strong")
    crop_scale: list[float] = knob([0.8, 1.0], PAIR_IN_UNIT)
    crop_ratio: list[float] = knob([0.75, 1.3333333], PAIR_POSITIVE)
    hflip_p: float = knob(0.5, UNIT)
    vflip_p: float = knob(0.5, UNIT)
    affine_p: float = knob(0.5, UNIT)
    shift: float = knob(0.0625, UNIT)
    scale: list[float] = knob([0.9, 1.1], PAIR_POSITIVE)
    rotate: float = knob(15.0, (lambda v: 0 <= v <= 180, "degrees in [0, 180]"))
    fill_mask: int = knob(0, one_of(0, 255))
    jitter_p: float = knob(0.5, UNIT)
    brightness: float = knob(0.2, UNIT)
    contrast: float = knob(0.2, UNIT)
    saturation: float = knob(0.2, UNIT)
    hue: float = knob(0.05, (lambda v: 0 <= v <= 0.5, "a number in [0, 0.5]"))
    rgb_shift_p: float = knob(0.5, UNIT)
    rgb_shift: float = knob(15.0, (lambda v: 0 <= v <= 255, "a number in [0, 255]"))
    noise_p: float = knob(0.3, UNIT)
    noise_std: list[float] = knob([0.02, 0.08], PAIR_IN_UNIT)


@AUGMENTATIONS.option("seg.data.transforms:preset_crop_gray")
@dataclass
class CropGrayAugmentation:
    name: str = option_name("crop_gray")
    crop_p: float = knob(1.0, UNIT)
    crop_scale: list[float] = knob([0.5, 1.0], PAIR_IN_UNIT)
    crop_ratio: list[float] = knob([0.75, 1.3333333], PAIR_POSITIVE)
    gray_p: float = knob(0.2, UNIT)
    brightness: float = knob(0.2, UNIT)
    brightness_p: float = knob(0.5, UNIT)


# --- loss (classes in seg/losses.py) ------------------------------------------------------------------------
LOSSES = Registry("loss", "an nn.Module: (logits, target) -> a scalar loss")
WEIGHT: Check = (lambda v: v >= 0, "a number >= 0")


@LOSSES.option("seg.losses:BCELoss")
@dataclass
class BCELossConfig:
    name: str = option_name("bce")


@LOSSES.option("seg.losses:DiceLoss")
@dataclass
class DiceLossConfig:
    name: str = option_name("dice")
    smooth: float = knob(1.0, POSITIVE)


@LOSSES.option("seg.losses:BCEDiceLoss")
@dataclass
class BCEDiceLossConfig:
    name: str = option_name("bce_dice")
    bce_weight: float = knob(0.5, WEIGHT)
    dice_weight: float = knob(0.5, WEIGHT)
    smooth: float = knob(1.0, POSITIVE)


@LOSSES.option("seg.losses:TverskyLoss")
@dataclass
class TverskyLossConfig:
    name: str = option_name("tversky")
    alpha: float = knob(0.3, UNIT)
    beta: float = knob(0.7, UNIT)
    smooth: float = knob(1.0, POSITIVE)


@LOSSES.option("seg.losses:BCETverskyLoss")
@dataclass
class BCETverskyLossConfig:
    name: str = option_name("bce_tversky")
    bce_weight: float = knob(0.5, WEIGHT)
    tversky_weight: float = knob(0.5, WEIGHT)
    alpha: float = knob(0.3, UNIT)
    beta: float = knob(0.7, UNIT)
    smooth: float = knob(1.0, POSITIVE)


@LOSSES.option("seg.losses:FocalLoss")
@dataclass
class FocalLossConfig:
    name: str = option_name("focal")
    alpha: float | None = knob(0.25, UNIT)
    gamma: float = knob(2.0, WEIGHT)


# --- optimizer and schedule ---------------------------------------------------------------------------------
OPTIMIZERS = Registry("optimizer", "a torch optimizer: optimizer(params, **knobs)")
SCHEDULES = Registry("scheduler", "an LRSchedule: schedule(optimizer, epochs, steps_per_epoch, **knobs)")
@OPTIMIZERS.option("torch.optim:AdamW")
@dataclass
class AdamWConfig:
    name: str = option_name("adamw")
    lr: float = knob(1e-3, (lambda v: v > 0, "a number > 0, e.g. optimizer.lr=3e-4"))
    weight_decay: float = knob(1e-2, WEIGHT)


@OPTIMIZERS.option("torch.optim:Adam")
@dataclass
class AdamConfig(AdamWConfig):
    name: str = option_name("adam")
    lr: float = knob(1e-4, (lambda v: v > 0, "a number > 0, e.g. optimizer.lr=3e-4"))
    weight_decay: float = knob(0.0, WEIGHT)


@OPTIMIZERS.option("torch.optim:SGD")
@dataclass
class SGDConfig(AdamWConfig):
    name: str = option_name("sgd")
    lr: float = knob(1e-2, (lambda v: v > 0, "a number > 0, e.g. optimizer.lr=1e-2"))
    weight_decay: float = knob(1e-4, WEIGHT)
    momentum: float = knob(0.9, (lambda v: 0 <= v < 1, "a number in [0, 1)"))
    nesterov: bool = False


@SCHEDULES.option("seg.engine.optim:constant_lr")
@dataclass
class NoSchedule:
    name: str = option_name("none")


@SCHEDULES.option("seg.engine.optim:cosine_schedule")
@dataclass
class CosineSchedule:
    name: str = option_name("cosine")
    min_lr: float = knob(0.0, WEIGHT)


@SCHEDULES.option("seg.engine.optim:onecycle_schedule")
@dataclass
class OneCycleSchedule:
    name: str = option_name("onecycle")
    pct_start: float = knob(0.1, FRACTION)
    div_factor: float = knob(25.0, POSITIVE)
    final_div_factor: float = knob(1e4, POSITIVE)


@SCHEDULES.option("seg.engine.optim:plateau_schedule")
@dataclass
class PlateauSchedule:
    name: str = option_name("plateau")
    monitor: str = knob("val/dice", one_of("val/dice", "val/loss"))
    factor: float = knob(0.5, FRACTION)
    patience: int = knob(3, at_least(0))
    min_lr: float = knob(1e-6, WEIGHT)


EXTENDABLE_SCHEDULES = ("none", "plateau")
"""Schedules whose lr does not depend on the total number of epochs: a run with one can be extended."""


# --- trainer, logger, paths -----------------------------------------------------------------------------------
@dataclass
class TrainerConfig:
    epochs: int = knob(20, EPOCHS)
    device: str = knob("auto", DEVICE, neutral=True)
    precision: str = knob("32", one_of("32", "bf16", "16"))
    channels_last: bool = knob(True, neutral=True)
    reuse_host_memory: bool = knob(True, neutral=True)
    grad_clip: float | None = knob(None, POSITIVE)
    deterministic: bool = False
    early_stop_patience: int | None = knob(None, at_least(1))
    limit_train_batches: int | None = knob(None, at_least(1))
    limit_val_batches: int | None = knob(None, at_least(1))
    strategy: str = knob("single", one_of("single", "ddp"))
    sync_batchnorm: bool = False
    progress: str = knob("auto", (lambda v: v.lower() in ("auto", "true", "false"), "auto, true or false"),
                         neutral=True)  # fmt: skip
    test_after_fit: bool = knob(True, neutral=True)
    # hflip, flips: the test pass after fit also scores each checkpoint with this test-time augmentation (summary
    # test_tta, test_per_image_tta.csv); evaluation only, so left out of a run's key
    test_tta: str = knob("none", TTA, neutral=True)
    # e.g. 0.99: an exponential moving average of the weights, saved as checkpoints/ema.pt and tested like best.pt
    ema_decay: float | None = knob(None, FRACTION, keyed_once_set=True)


@dataclass
class LoggerConfig:
    """W&B (`logger=wandb`, offline by default) or none (`logger=none`: metrics.csv and curves.png only)."""

    name: str = knob("wandb", one_of("wandb", "none"), neutral=True)
    project: str = knob("seg", neutral=True)
    entity: str | None = knob(None, neutral=True)
    mode: str = knob("offline", one_of("offline", "online", "disabled"), neutral=True)
    group: str = knob("${oc.select:name,seg}", neutral=True)  # the run's name (seg.evaluate has none)
    # the W&B run's name; null: the run's `name`, or in a sweep the job's swept values (unet-onecycle-s1)
    run_name: str | None = knob(None, neutral=True)
    job_type: str = knob("train", neutral=True)
    init_timeout: float = knob(60.0, POSITIVE, neutral=True)
    tags: list[str] = knob([], neutral=True)
    log_images_every: int = knob(5, at_least(0), neutral=True)
    num_images: int = knob(8, at_least(1), neutral=True)
    log_checkpoints: bool = knob(False, neutral=True)  # best.pt as a W&B artifact (type model) after training


@dataclass
class PathsConfig:
    root_dir: str = knob("${oc.env:SEG_ROOT,.}", neutral=True)
    data_dir: str = knob("${paths.root_dir}/data", neutral=True)
    output_dir: str = knob("${paths.root_dir}/outputs", neutral=True)
    cache_dir: str = knob("${paths.data_dir}/cache", neutral=True)


@dataclass
class PruningConfig:
    """Set by hparams_search configs; `trial` is set per job by the seg_optuna sweeper. `pruner` picks Optuna's rule:
    median (startup_trials, warmup_epochs, min_trials), successive_halving / hyperband (min_resource,
    reduction_factor, bootstrap_count), or none (every trial trains to the end)."""

    storage: str | None = knob(None, neutral=True)
    study_name: str | None = knob(None, neutral=True)
    trial: int | None = knob(None, neutral=True)
    pruner: str = knob("median", one_of("none", "median", "successive_halving", "hyperband"), neutral=True)
    startup_trials: int = knob(5, at_least(0), neutral=True)
    warmup_epochs: int = knob(2, at_least(0), neutral=True)
    min_trials: int = knob(1, at_least(1), neutral=True)
    min_resource: int = knob(1, at_least(1), neutral=True)
    reduction_factor: int = knob(3, at_least(2), neutral=True)
    bootstrap_count: int = knob(0, at_least(0), neutral=True)


@dataclass
class AblationConfig:
    """One ablation of a study (seg/study): `factor` (a config group or key) takes each of `values` and is compared
    against `baseline` within each combination of the `strata` ({key: values}, e.g. {model: [unet, ...]}), paired
    by seed. The experiment file that holds it sets the ablation's fixed settings; `finding` is the claim it checks."""

    factor: str = knob(MISSING, neutral=True)
    values: list[str] = knob(MISSING, (lambda v: len(v) >= 2 and len(set(v)) == len(v), "two or more distinct "
                                       "values (each is compared against the baseline)"), neutral=True)  # fmt: skip
    baseline: str = knob(MISSING, neutral=True)
    strata: dict[str, list[str]] = field(default_factory=dict, metadata={"check": None, "neutral": True})
    finding: str | None = knob(None, neutral=True)


@dataclass
class SeedsConfig:
    """A seed per random source (seg.engine.runtime.Seeds); null: the run's `seed` (`study.vary` sets them)."""

    init: int | None = knob(None, keyed_once_set=True)  # the global RNGs: weight initialisation, dropout
    order: int | None = knob(None, keyed_once_set=True)  # the order of the training images
    augmentation: int | None = knob(None, keyed_once_set=True)  # each item's augmentation draws


SOURCES = tuple(f.name for f in fields(SeedsConfig))
"""The random sources a run's seed drives, each seedable alone (seeds.<source>) and varied alone by study.vary."""


@dataclass
class StudyConfig:
    """A study (`-m study=ablations`, the seg_study sweeper): ablations over seeds, deduplicated and resumable."""

    name: str = knob("study", neutral=True)
    # experiment configs with an `ablation` block; [] (e.g. `-m experiment=ablation_scheduler`): this config's own
    experiments: list[str] = knob([], neutral=True)
    seeds: list[int] = knob([0, 1, 2], (lambda v: len(v) >= 1 and len(set(v)) == len(v), "distinct integers"),
                            neutral=True)  # fmt: skip
    # add seeds only to unresolved comparisons, up to this many (a sequential design of `looks` looks); null: off
    max_seeds: int | None = knob(None, at_least(2), neutral=True)
    looks: int = knob(3, at_least(2), neutral=True)
    margin: float = knob(0.01, WEIGHT, neutral=True)  # the largest difference that counts as none (metric units)
    alpha: float = knob(0.05, FRACTION, neutral=True)
    # verdict rule (seg/study/rules.py): the paired test over seeds, the Holm family, alpha spending over the looks
    test: str = knob("t", one_of(*constants.TESTS), neutral=True)
    family: str = knob("ablation", one_of(*constants.FAMILIES), neutral=True)
    spending: str = knob("obrien_fleming", one_of(*constants.SPENDING), neutral=True)
    metric: str = knob("test_dice", one_of("test_dice", "best_val_dice"), neutral=True)
    # whose test Dice is judged: best (best val Dice), last (last epoch) or ema (needs trainer.ema_decay)
    checkpoint: str = knob("best", one_of(*constants.CHECKPOINTS), neutral=True)
    # e.g. [init, order, augmentation]: per arm, also vary each source alone over the seeds, the others fixed at the
    # first seed (seg.study.variance: each source's share of the spread); []: the seeds vary all sources together
    vary: list[str] = knob([], (lambda v: len(set(v)) == len(v) and set(v) <= set(SOURCES),
                                f"distinct values of {', '.join(SOURCES)}"), neutral=True)  # fmt: skip
    # runs another study command is training: false -> leave them to it; true -> wait for it and take what is left
    wait: bool = knob(False, neutral=True)
    # k-fold splits varied with the seed (seg/study/plan.py): per_seed -> seed s trains on data.fold=s % K; every ->
    # every seed on every fold, the folds' mean per seed paired (seg/study/results.py)
    folds: int | None = knob(None, at_least(2), neutral=True)
    fold_mode: str = knob("per_seed", one_of("per_seed", "every"), neutral=True)


@dataclass
class TrainConfig:
    """`python -m seg.train`: conf/train.yaml composes one option of each group into this."""

    data: Any = MISSING
    model: Any = MISSING
    augmentation: Any = MISSING
    loss: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = MISSING
    trainer: Any = MISSING
    logger: Any = MISSING
    paths: Any = MISSING
    name: str = knob("default", neutral=True)
    seed: int = 0
    seeds: SeedsConfig = field(default_factory=SeedsConfig)
    threshold: float = knob(0.5, FRACTION)
    resume: str | None = knob(None, neutral=True)
    tags: list[str] = knob([], neutral=True)
    pruning: PruningConfig | None = knob(None, neutral=True)
    ablation: AblationConfig | None = knob(None, neutral=True)
    study: StudyConfig | None = knob(None, neutral=True)


@dataclass
class EvalDataConfig:
    """seg.evaluate's data keys: null takes the checkpoint's value."""

    root: str | None = None
    image_size: int | None = knob(None, IMAGE_SIZE)
    uncertain: str | None = knob(None, one_of(*UNCERTAIN_MODES))
    val_split: float | None = knob(None, FRACTION)
    limit: int | None = knob(None, at_least(1))
    on_bad_sample: str | None = knob(None, one_of(*BAD_SAMPLE_POLICIES))
    batch_size: int | None = knob(None, BATCH_SIZE)
    num_workers: int = knob(0, WORKERS)
    cache: bool = True


@dataclass
class EvaluateConfig:
    """`python -m seg.evaluate`: conf/evaluate.yaml."""

    paths: Any = MISSING
    data: EvalDataConfig = field(default_factory=EvalDataConfig)
    ckpt: Any = knob(None, CHECKPOINTS)  # one checkpoint, or [a.pt,b.pt,...]: the ensemble of their probabilities
    ensemble: str | None = None  # a study folder: with `arm`, the ensemble of that arm's completed seeds
    arm: str | None = None
    tta: str = knob("none", TTA)
    split: str = knob("test", one_of(*SPLITS))
    device: str = knob("auto", DEVICE)
    strategy: str = knob("single", one_of("single", "ddp"))
    threshold: float | None = knob(None, FRACTION)
    num_worst: int = knob(4, at_least(0))
    num_random: int = knob(4, at_least(0))
    seed: int = 0
    logger: LoggerConfig | None = None  # null: the checkpoint's; `logger=none`: no W&B run, `logger=wandb`: one


@dataclass
class PredictConfig:
    """`python -m seg.predict`: conf/predict.yaml."""

    ckpt: Any = knob(None, CHECKPOINTS)  # one checkpoint, or [a.pt,b.pt,...]: the ensemble of their probabilities
    ensemble: str | None = None  # a study folder: with `arm`, the ensemble of that arm's completed seeds
    arm: str | None = None
    tta: str = knob("none", TTA)
    input: str | None = None
    output: str | None = None
    device: str = knob("auto", DEVICE)
    image_size: int | None = knob(None, IMAGE_SIZE)
    threshold: float | None = knob(None, FRACTION)
    overlay_alpha: float = knob(0.45, UNIT)
    max_pixels: int = knob(40_000_000, between(1, 2**31 - 1, "pixels of one decoded image"))


OPTION_GROUPS: tuple[Registry, ...] = (MODELS, AUGMENTATIONS, LOSSES, OPTIMIZERS, SCHEDULES)
"""The config groups whose options are registered with their builders (seg/registry.py)."""

GROUPS: dict[str, dict[str, type]] = {
    "data": {"data": DataConfig},
    **{registry.group: registry.schemas() for registry in OPTION_GROUPS},
    "trainer": {"trainer": TrainerConfig},
    "logger": {"logger": LoggerConfig},
    "paths": {"paths": PathsConfig},
}
"""Config group -> {schema name -> dataclass}; registered as `<group>/base_<schema name>`."""

ROOTS: dict[str, type] = {"train": TrainConfig, "evaluate": EvaluateConfig, "predict": PredictConfig}
"""Entry config name -> its schema, registered as `base_<name>`."""

GLOBAL_GROUPS = ("experiment", "debug", "hparams_search", "profile", "study")
"""Groups whose options are `# @package _global_` files: they may set any key."""
