"""The config schema: every group option composes and checks; bad values and unknown keys fail with one line."""

from __future__ import annotations

import dataclasses

import pytest
from configs import CONF, compose_config, compose_raw
from hydra.errors import ConfigCompositionException

from seg import schema
from seg.errors import ConfigError

GROUPS = ["data", "model", "augmentation", "loss", "optimizer", "scheduler", "trainer", "logger", "paths",
          "experiment", "debug", "hparams_search"]  # fmt: skip


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in group_options(g) if g != "hparams_search"])
def test_every_group_option_composes_and_checks(group: str, option: str) -> None:
    cfg = compose_config(f"{group}={option}")
    assert isinstance(cfg, schema.TrainConfig)
    if group in schema.GROUPS:
        assert dataclasses.is_dataclass(getattr(cfg, group))


def test_every_schema_option_has_a_yaml_file_and_back() -> None:
    for group in ("model", "augmentation", "loss", "optimizer", "scheduler"):
        assert group_options(group) == sorted(schema.GROUPS[group]), group


def test_defaults_live_in_the_schema() -> None:
    cfg = compose_config("loss=tversky")
    assert (cfg.loss.alpha, cfg.loss.beta) == (schema.TverskyLossConfig.alpha, schema.TverskyLossConfig.beta)
    assert (schema.LOSSES.build(cfg.loss).alpha, schema.LOSSES.build(cfg.loss).beta) == (0.3, 0.7)
    cfg = compose_config()
    assert cfg.data.name == "oxford_pet" and cfg.model.name == "unet" and cfg.trainer.epochs == 20


def test_smoke_keeps_chosen_groups() -> None:
    cfg = compose_config("debug=smoke", "model=resnet34_unet", "data=synthetic")
    assert cfg.model.name == "resnet34_unet" and cfg.data.name == "synthetic"
    assert cfg.trainer.epochs == 1 and cfg.data.image_size <= 32 and cfg.model.base_channels <= 8


@pytest.mark.parametrize(
    "override,key",
    [
        ("optimizer.lr=-1e-3", "optimizer.lr"),
        ("trainer.epochs=0", "trainer.epochs"),
        ("data.batch_size=0", "data.batch_size"),
        ("data.uncertain=maybe", "data.uncertain"),
        ("data.val_split=1.5", "data.val_split"),
        ("scheduler=plateau scheduler.monitor=val/acc", "scheduler.monitor"),
        ("trainer.precision=8", "trainer.precision"),
        ("model=resnet34_unet data.image_size=16", "data.image_size"),
        ("data.image_size=8", "data.image_size"),
        ("threshold=2", "threshold"),
        ("model=resnet34_unet model.base_channels=6", "model.base_channels"),
        ("model=resnet34_unet model.encoder_weights=imagenet model.base_channels=32", "model.base_channels"),
        ("loss=focal loss.gamma=-1", "loss.gamma"),
        ("augmentation=strong augmentation.crop_scale=[0.9,0.1]", "augmentation.crop_scale"),
        ("trainer.device=gpu", "trainer.device"),
        ("trainer.progress=maybe", "trainer.progress"),
    ],
)
def test_invalid_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        compose_config(*override.split())
    message = str(err.value)
    assert key in message and "allowed" in message and "\n" not in message


@pytest.mark.parametrize("override", ["+trainer.epoch=5", "+foo=1", "+model.width=3", "+data.synthetic.m=3"])
def test_unknown_keys_are_refused_even_when_added(override: str) -> None:
    with pytest.raises(ConfigError, match="unknown config key") as err:
        compose_config("data=synthetic", override)
    if "epoch=" in override:
        assert "did you mean trainer.epochs" in str(err.value)


@pytest.mark.parametrize(
    "override", ["threshold=fast", "loss=focal loss.gamma=fast", "trainer.epoch=5", "model=unet3000"]
)
def test_hydra_refuses_wrong_types_and_unknown_keys_when_composing(override: str) -> None:
    with pytest.raises(ConfigCompositionException):
        compose_raw(*override.split())


def test_evaluate_and_predict_configs_check_too() -> None:
    cfg = compose_config("ckpt=x.pt", "data.root=/d", config_name="evaluate")
    assert cfg.data.root == "/d" and cfg.data.image_size is None and cfg.threshold is None
    with pytest.raises(ConfigError, match="split"):
        compose_config("split=bogus", config_name="evaluate")
    with pytest.raises(ConfigError, match="threshold"):
        compose_config("threshold=1.5", config_name="predict")
