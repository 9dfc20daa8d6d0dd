"""Learning-rate schedules built from plain config values: the builders of the `scheduler` options (seg.schema
SCHEDULES; optimizers are torch's own, registered in seg.schema OPTIMIZERS)."""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

Scheduler = LRScheduler | ReduceLROnPlateau


class LRSchedule:
    """A scheduler with the stepping rule that belongs to it.

    OneCycle steps after every batch, cosine after every epoch, plateau after validation on a
    monitored metric; `none` keeps the lr constant. The loop calls `after_batch` and `after_epoch`
    and never needs to know which one it has.
    """

    def __init__(self, scheduler: Scheduler | None, per_batch: bool, monitor: str | None = None):
        self.scheduler = scheduler
        self.per_batch = per_batch
        self.monitor = monitor

    def after_batch(self) -> None:
        if self.scheduler is not None and self.per_batch:
            self.scheduler.step()

    def after_epoch(self, val_metrics: dict[str, float]) -> None:
        if self.scheduler is None or self.per_batch:
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(val_metrics[self.monitor.removeprefix("val/")])
        else:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)


def constant_lr(optimizer: Optimizer, epochs: int, steps_per_epoch: int) -> LRSchedule:
    """`scheduler=none`: the lr stays as the optimizer set it."""
    return LRSchedule(None, per_batch=False)


def cosine_schedule(optimizer: Optimizer, epochs: int, steps_per_epoch: int, min_lr: float) -> LRSchedule:
    """Cosine annealing to `min_lr` over the run's epochs, stepped after each epoch."""
    return LRSchedule(CosineAnnealingLR(optimizer, T_max=epochs, eta_min=min_lr), per_batch=False)


def onecycle_schedule(optimizer: Optimizer, epochs: int, steps_per_epoch: int, pct_start: float, div_factor: float,
                      final_div_factor: float) -> LRSchedule:
    """One cycle up to the optimizer's lr and down again, stepped after each batch."""
    max_lr = [group["lr"] for group in optimizer.param_groups]
    scheduler = OneCycleLR(optimizer, max_lr=max_lr, epochs=epochs, steps_per_epoch=steps_per_epoch,
                           pct_start=pct_start, div_factor=div_factor, final_div_factor=final_div_factor)
    return LRSchedule(scheduler, per_batch=True)


def plateau_schedule(optimizer: Optimizer, epochs: int, steps_per_epoch: int, monitor: str, factor: float,
                     patience: int, min_lr: float) -> LRSchedule:
    """Reduce the lr by `factor` when `monitor` (val/dice: higher is better; val/loss: lower) has not improved for
    `patience` epochs, down to `min_lr`."""
    mode = "max" if monitor == "val/dice" else "min"
    scheduler = ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience, min_lr=min_lr)
    return LRSchedule(scheduler, per_batch=False, monitor=monitor)
