"""Checkpoints: atomic writes, weights_only loading, clear refusals."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch

from seg.engine.checkpoint import (
    load_checkpoint,
    load_model_weights,
    resolve_resume_path,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from seg.errors import CheckpointError


class Tiny(torch.nn.Module):
    def __init__(self, width: int = 2):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, width, 1)


def test_round_trip_with_weights_only(tmp_path) -> None:
    model = Tiny()
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(
        {"model_class": "Tiny", "model": model.state_dict(), "epoch": 3, "rng": rng_state()}, path
    )
    ckpt = load_checkpoint(path)
    other = Tiny()
    load_model_weights(other, ckpt, path)
    assert torch.equal(other.conv.weight, model.conv.weight)
    assert ckpt["epoch"] == 3
    assert resolve_resume_path(tmp_path) == path
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp files left


def test_rng_state_round_trip() -> None:
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"model_class": "Tiny", "model": Tiny().state_dict(), "epoch": 1}, path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint({"epoch": 2}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert list(tmp_path.iterdir()) == [path]


class Exploit:
    def __reduce__(self):
        return (print, ("this would run code",))


def test_refuses_pickle_that_would_run_code(tmp_path) -> None:
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"format": "seg-checkpoint-v1", "x": Exploit()}))
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)


def test_refuses_foreign_checkpoint(tmp_path) -> None:
    path = tmp_path / "foreign.pt"
    torch.save({"state_dict": Tiny().state_dict()}, path)
    with pytest.raises(CheckpointError, match="not a seg checkpoint"):
        load_checkpoint(path)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        load_checkpoint(garbage)


def test_checkpoint_of_another_model_is_refused(tmp_path) -> None:
    path = tmp_path / "best.pt"
    save_checkpoint({"model_class": "UNet", "model": {}}, path)
    with pytest.raises(CheckpointError, match="holds a UNet"):
        load_model_weights(Tiny(), load_checkpoint(path), path)
    save_checkpoint({"model_class": "Tiny", "model": Tiny(width=4).state_dict()}, path)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_model_weights(Tiny(width=2), load_checkpoint(path), path)
