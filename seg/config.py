"""Validate the composed config before any work starts.

Hydra already rejects unknown group options and unknown keys (the config is in struct mode).
This module checks values: each problem is reported as one line naming the key and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from seg.data.trimap import UNCERTAIN_MODES
from seg.data.validate import BAD_SAMPLE_POLICIES
from seg.errors import ConfigError

Check = Callable[[Any], bool]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def positive_number(v: Any) -> bool:
    return _is_number(v) and v > 0


def non_negative_number(v: Any) -> bool:
    return _is_number(v) and v >= 0


def positive_int(v: Any) -> bool:
    return _is_int(v) and v >= 1


def non_negative_int(v: Any) -> bool:
    return _is_int(v) and v >= 0


def fraction(v: Any) -> bool:
    return _is_number(v) and 0 < v < 1


def optional(check: Check) -> Check:
    return lambda v: v is None or check(v)


def boolean(v: Any) -> bool:
    return isinstance(v, bool)


def one_of(*allowed: Any) -> Check:
    return lambda v: v in allowed


# key -> (check, what is allowed). Keys absent from the config (e.g. momentum for adam) are skipped.
RULES: dict[str, tuple[Check, str]] = {
    "seed": (_is_int, "an integer"),
    "trainer.epochs": (positive_int, "an integer >= 1"),
    "trainer.precision": (one_of(32, "32", "bf16", 16, "16"), "32, bf16 or 16"),
    "trainer.grad_clip": (optional(positive_number), "null or a number > 0"),
    "trainer.early_stop_patience": (optional(positive_int), "null or an integer >= 1"),
    "trainer.limit_train_batches": (optional(positive_int), "null or an integer >= 1"),
    "trainer.limit_val_batches": (optional(positive_int), "null or an integer >= 1"),
    "trainer.strategy": (one_of("single", "ddp"), "single or ddp"),
    "trainer.channels_last": (boolean, "true or false"),
    "trainer.reuse_host_memory": (boolean, "true or false"),
    "trainer.deterministic": (boolean, "true or false"),
    "trainer.sync_batchnorm": (boolean, "true or false"),
    "trainer.test_after_fit": (boolean, "true or false"),
    "trainer.progress": (one_of("auto", True, False), "auto, true or false"),
    "data.image_size": (positive_int, "an integer >= 1"),
    "data.batch_size": (positive_int, "an integer >= 1"),
    "data.num_workers": (non_negative_int, "an integer >= 0"),
    "data.uncertain": (one_of(*UNCERTAIN_MODES), ", ".join(UNCERTAIN_MODES)),
    "data.val_split": (optional(fraction), "null (every 10th entry) or a fraction in (0, 1)"),
    "data.limit": (optional(positive_int), "null or an integer >= 1"),
    "data.cache": (boolean, "true or false"),
    "data.on_bad_sample": (one_of(*BAD_SAMPLE_POLICIES), ", ".join(BAD_SAMPLE_POLICIES)),
    "model.base_channels": (positive_int, "an integer >= 1"),
    "model.upsample": (one_of("transpose", "bilinear"), "transpose or bilinear"),
    "model.encoder_weights": (one_of(None, "imagenet"), "null or imagenet"),
    "optimizer.name": (one_of("adamw", "adam", "sgd"), "adamw, adam or sgd"),
    "optimizer.lr": (positive_number, "a number > 0, e.g. optimizer.lr=3e-4"),
    "optimizer.weight_decay": (non_negative_number, "a number >= 0"),
    "optimizer.momentum": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "scheduler.name": (one_of("none", "cosine", "onecycle", "plateau"), "none, cosine, onecycle or plateau"),
    "scheduler.min_lr": (non_negative_number, "a number >= 0"),
    "scheduler.pct_start": (fraction, "a fraction in (0, 1)"),
    "scheduler.monitor": (one_of("val/dice", "val/loss"), "val/dice or val/loss"),
    "scheduler.factor": (fraction, "a fraction in (0, 1)"),
    "scheduler.patience": (non_negative_int, "an integer >= 0"),
    "logger.mode": (one_of("offline", "online", "disabled"), "offline, online or disabled"),
    "logger.log_images_every": (non_negative_int, "an integer >= 0 (0: never)"),
}


def _lookup(cfg: DictConfig, dotted: str) -> tuple[bool, Any]:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False, None
        node = node[part]
    return True, node


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError (one line: key, value, what is allowed) for the first invalid value."""
    for key, (check, allowed) in RULES.items():
        present, value = _lookup(cfg, key)
        if present and not check(value):
            raise ConfigError(f"invalid config: {key}={value!r}; allowed: {allowed}")
    _check_image_size_fits_model(cfg)


def _check_image_size_fits_model(cfg: DictConfig) -> None:
    model_cls = get_class(cfg.model._target_)
    min_size = getattr(model_cls, "min_input_size", 1)
    if cfg.data.image_size < min_size:
        raise ConfigError(
            f"invalid config: data.image_size={cfg.data.image_size} is too small for "
            f"{model_cls.__name__}; allowed: an integer >= {min_size}"
        )


def data_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """The keyword arguments of `seg.data.build_datasets` from the `data` group (plain values)."""
    data = cfg.data
    synthetic = data.get("synthetic")
    return {
        "root": str(data.root),
        "image_size": int(data.image_size),
        "augmentation": OmegaConf.to_container(cfg.augmentation, resolve=True),
        "uncertain": data.uncertain,
        "val_split": data.val_split,
        "limit": data.limit,
        "on_bad_sample": data.on_bad_sample,
        "download": bool(data.download),
        "cache_dir": str(cfg.paths.cache_dir) if data.cache else None,
        "seed": int(cfg.seed),
        "synthetic": None if synthetic is None else OmegaConf.to_container(synthetic, resolve=True),
    }


def run_dir_for(resume: str | None, default: str) -> str:
    """Resolver behind `hydra.run.dir`: a resumed run writes into the run directory it continues."""
    if resume in (None, "", "None", "null"):
        return default
    target = Path(resume).expanduser()
    return str(target if target.is_dir() or not target.suffix else target.parent.parent)


def register_resolvers() -> None:
    """Register the OmegaConf resolvers the config tree uses (idempotent)."""
    if not OmegaConf.has_resolver("seg_run_dir"):
        OmegaConf.register_new_resolver("seg_run_dir", run_dir_for)
