"""The config tree: every group option composes and validates; bad values fail with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from seg.config import register_resolvers, validate_config
from seg.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = [
    "data",
    "model",
    "augmentation",
    "loss",
    "optimizer",
    "scheduler",
    "trainer",
    "logger",
    "paths",
    "experiment",
    "hparams_search",
    "debug",
]
register_resolvers()


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in group_options(g) if g != "hparams_search"]
)
def test_every_group_option_composes_and_validates(group: str, option: str) -> None:
    cfg = compose_train(f"{group}={option}")
    OmegaConf.resolve(cfg)
    validate_config(cfg)
    if group not in ("experiment", "debug", "paths", "trainer"):
        assert cfg[group] is not None


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert group_options(group), f"conf/{group}/ has no options"


def test_defaults_and_user_keys() -> None:
    cfg = compose_train()
    assert cfg.data.name == "oxford_pet"
    assert cfg.model._target_ == "seg.models.UNet"
    for key in ("trainer.epochs", "data.batch_size", "data.image_size", "optimizer.lr", "seed"):
        assert OmegaConf.select(cfg, key) is not None, key


def test_smoke_keeps_chosen_groups() -> None:
    cfg = compose_train("debug=smoke", "model=resnet34_unet", "data=synthetic")
    assert cfg.model._target_ == "seg.models.ResNet34UNet"
    assert cfg.data.name == "synthetic"
    assert cfg.trainer.epochs == 1 and cfg.data.image_size <= 32 and cfg.model.base_channels <= 8


@pytest.mark.parametrize(
    "override,key",
    [
        ("optimizer.lr=-1e-3", "optimizer.lr"),
        ("optimizer.lr=fast", "optimizer.lr"),
        ("trainer.epochs=0", "trainer.epochs"),
        ("data.batch_size=0", "data.batch_size"),
        ("data.uncertain=maybe", "data.uncertain"),
        ("data.val_split=1.5", "data.val_split"),
        ("scheduler=plateau scheduler.monitor=val/acc", "scheduler.monitor"),
        ("trainer.precision=8", "trainer.precision"),
        ("model=resnet34_unet data.image_size=16", "data.image_size"),
        ("data.image_size=8", "data.image_size"),
    ],
)
def test_invalid_values_name_the_key(override: str, key: str) -> None:
    cfg = compose_train(*override.split())
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    message = str(err.value)
    assert key in message and "allowed" in message and "\n" not in message
