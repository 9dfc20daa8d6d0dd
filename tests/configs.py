"""The real config tree composed in-process (Hydra's compose API), for tests that need a checked config."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from seg.config import compose, register, typed_config

CONF = Path(__file__).resolve().parents[1] / "conf"
register()


def compose_raw(*overrides: str, config_name: str = "train") -> DictConfig:
    """The composed config of `python -m seg.<config_name> <overrides>`, unchecked."""
    return compose(config_name, overrides)


def compose_config(*overrides: str, config_name: str = "train"):
    """The checked, typed config (seg.schema) of `python -m seg.<config_name> <overrides>`."""
    return typed_config(compose_raw(*overrides, config_name=config_name))


def tiny_checkpoint(epoch: int = 1):
    """A real seg Checkpoint of a smoke-sized UNet (seg.rundir.Checkpoint) at `epoch`."""
    from seg.config import to_yaml
    from seg.engine.runtime import rng_state
    from seg.models import build_model
    from seg.registry import option_args
    from seg.rundir import Checkpoint

    cfg = compose_config("debug=smoke", "data=synthetic", "logger=none")
    model = build_model(cfg.model.name, option_args(cfg.model))
    return Checkpoint(model=model.state_dict(), config=to_yaml(cfg), epoch=epoch, state={"epoch": epoch},
                      optimizer={}, schedule={}, scaler={}, rng=rng_state())  # fmt: skip
