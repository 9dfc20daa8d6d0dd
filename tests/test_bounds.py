"""Bounded inputs: keys that size memory, processes or files are bounded in the schema (command line and stored
configs alike, before any allocation), stored YAML is parsed with limits, and any file that is not a checkpoint is
one line whatever the unpickler raises. In-process."""

from __future__ import annotations

import functools

import pytest
import yaml
from configs import compose_config, tiny_checkpoint

from seg.config import train_config_from_yaml
from seg.errors import CheckpointError, ConfigError
from seg.rundir import load_checkpoint
from seg.schema import machine_workers


@pytest.mark.parametrize("override,allowed", [
    ("data.image_size=100000", "[1, 4096]"), ("model.base_channels=1000000", "[1, 1024]"),
    ("data.batch_size=1000000", "[1, 4096]"), ("trainer.epochs=10000000", "[1, 100000]"),
    ("model=resnet34_unet model.base_channels=4096", "[4, 1024]"),
])  # fmt: skip
def test_sizes_that_would_exhaust_memory_are_refused_before_any_allocation(override: str, allowed: str) -> None:
    with pytest.raises(ConfigError, match=r"invalid config: .*allowed: .*" + allowed.replace("[", r"\[")):
        compose_config(*override.split())


def test_more_loader_workers_than_the_machine_can_start_are_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match=f"data.num_workers=1000; allowed: an integer in \\[0, {machine_workers()}\\]"
                                          ": each worker is a process"):  # fmt: skip
        compose_config("data.num_workers=1000")
    compose_config(f"data.num_workers={machine_workers()}")


@functools.cache
def _stored_text() -> str:
    return tiny_checkpoint().config


def _stored(**changes: object) -> str:
    """A real stored config (a checkpoint's) with `changes` ({"data.image_size": 10**6}) applied."""
    plain = yaml.safe_load(_stored_text())
    for key, value in changes.items():
        group, leaf = key.split(".")
        plain[group][leaf] = value
    return yaml.safe_dump(plain)


def test_a_stored_config_with_a_huge_size_is_refused_in_one_line() -> None:
    train_config_from_yaml(_stored(), "ok.pt")
    for key, value in {"data.image_size": 10**6, "model.base_channels": 10**6, "data.batch_size": 10**7}.items():
        with pytest.raises(ConfigError, match=f"{key}={value}; allowed: an integer in"):
            train_config_from_yaml(_stored(**{key: value}), "bad.pt")


BOMB = "bomb: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, "
    f"*l{i - 1}]\n" for i in range(1, 6))  # fmt: skip  # 10**6 values once the aliases are expanded


def test_a_stored_config_alias_bomb_or_oversized_text_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="bomb.pt: its config expands to more than 100000 values"):
        train_config_from_yaml(BOMB + _stored(), "bomb.pt")
    with pytest.raises(ConfigError, match="loop.pt: its config holds an anchor that refers to itself"):
        train_config_from_yaml("a: &a [*a]\n" + _stored(), "loop.pt")
    with pytest.raises(ConfigError, match="big.pt: its config is 2000001 characters long"):
        train_config_from_yaml("#" * 2_000_000 + "\n", "big.pt")


@pytest.mark.parametrize("text", ["hello\n", "epoch 1\n", "model: unet\n", ""])
def test_a_file_that_is_not_a_checkpoint_is_one_line_whatever_the_unpickler_raises(tmp_path, text: str) -> None:
    path = tmp_path / "best.pt"
    path.write_text(text)
    with pytest.raises(CheckpointError, match=f"refusing to load {path}: it is not a seg checkpoint") as e:
        load_checkpoint(path)
    assert "\n" not in str(e.value)
