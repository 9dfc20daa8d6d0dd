"""Each lr schedule follows its trajectory, stepped as the trainer steps it."""

from __future__ import annotations

import math

import pytest
import torch

from seg.schema import OPTIMIZERS, SCHEDULES

LR, EPOCHS, STEPS = 1e-3, 10, 5


def trajectory(name: str, monitored: list[float] | None = None, **kwargs) -> list[float]:
    """lr at the start of each epoch, driving the schedule like the training loop does."""
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = OPTIMIZERS.builder("adamw")(params, lr=LR, weight_decay=0.0)
    schedule = SCHEDULES.builder(name)(opt, EPOCHS, STEPS, **kwargs)
    lrs = []
    for epoch in range(EPOCHS):
        lrs.append(opt.param_groups[0]["lr"])
        for _ in range(STEPS):
            opt.step()
            schedule.after_batch()
        schedule.after_epoch({"dice": (monitored or [0.5] * EPOCHS)[epoch], "loss": 1.0})
    return lrs


def test_none_is_constant() -> None:
    assert trajectory("none") == [LR] * EPOCHS


def test_cosine_steps_per_epoch_over_the_run() -> None:
    lrs = trajectory("cosine", min_lr=0.0)
    expected = [LR * (1 + math.cos(math.pi * e / EPOCHS)) / 2 for e in range(EPOCHS)]
    assert lrs == pytest.approx(expected, rel=1e-6)


def test_onecycle_steps_per_batch_and_peaks_after_pct_start() -> None:
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = OPTIMIZERS.builder("adam")(params, lr=LR, weight_decay=0.0)
    schedule = SCHEDULES.builder("onecycle")(opt, EPOCHS, STEPS, pct_start=0.1, div_factor=25.0, final_div_factor=1e4)
    per_batch = []
    for _ in range(EPOCHS * STEPS):
        per_batch.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.after_batch()
        schedule.after_epoch({"dice": 0.5, "loss": 1.0})  # must not step a per-batch schedule again
    peak = per_batch.index(max(per_batch))
    assert per_batch[0] == pytest.approx(LR / 25.0)
    assert max(per_batch) == pytest.approx(LR)
    assert peak == round(0.1 * EPOCHS * STEPS) - 1
    assert per_batch[-1] < LR / 1000
    assert all(a >= b for a, b in zip(per_batch[peak:], per_batch[peak + 1 :]))


def test_plateau_on_val_dice_reduces_when_dice_stalls() -> None:
    dice = [0.1, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
    lrs = trajectory("plateau", monitored=dice, monitor="val/dice", factor=0.5, patience=2, min_lr=1e-6)
    # improves until epoch 2; after 3 epochs without improvement (patience 2) the lr halves
    assert lrs[:6] == [LR] * 6
    assert lrs[6] == pytest.approx(LR / 2)
    assert min(lrs) >= 1e-6


def test_plateau_on_val_loss_uses_min_mode() -> None:
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = OPTIMIZERS.builder("sgd")(params, lr=LR, weight_decay=0.0, momentum=0.9)
    schedule = SCHEDULES.builder("plateau")(opt, EPOCHS, STEPS, monitor="val/loss", factor=0.5, patience=0, min_lr=0.0)
    schedule.after_epoch({"dice": 0.0, "loss": 1.0})
    schedule.after_epoch({"dice": 0.0, "loss": 0.5})  # loss went down: an improvement
    assert opt.param_groups[0]["lr"] == pytest.approx(LR)
    schedule.after_epoch({"dice": 0.0, "loss": 0.7})
    assert opt.param_groups[0]["lr"] == pytest.approx(LR / 2)
