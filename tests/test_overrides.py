"""The key of a Hydra override, one reading for sweeps, studies, resume, evaluation and W&B names."""

from __future__ import annotations

import pytest

from seg.overrides import override_key


@pytest.mark.parametrize(
    ("override", "key", "group"),
    [
        ("trainer.epochs=5", "trainer.epochs", "trainer.epochs"),
        ("+trainer.epochs=5", "trainer.epochs", "trainer.epochs"),
        ("~logger", "logger", "logger"),
        ("++optimizer.lr=1e-3", "optimizer.lr", "optimizer.lr"),
        ("data.root=/a=b", "data.root", "data.root"),  # the key ends at the first '='
        ("+model@net=unet", "model@net", "model"),  # package=False: the config group, its @package dropped
        ("debug", "debug", "debug"),
    ],
)
def test_override_key(override: str, key: str, group: str) -> None:
    assert override_key(override) == key
    assert override_key(override, package=False) == group
