"""Optimizers and learning-rate schedulers built from plain config values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

Scheduler = LRScheduler | ReduceLROnPlateau


def build_optimizer(
    params: Iterable[torch.nn.Parameter], name: str, lr: float, weight_decay: float, **sgd: Any
) -> Optimizer:
    """AdamW, Adam or SGD over `params`; `sgd`: momentum and nesterov (defaults: seg/schema.py)."""
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, **sgd)
    raise ValueError(f"unknown optimizer.name={name!r}; allowed: adamw, adam, sgd")


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


def build_schedule(optimizer: Optimizer, name: str, epochs: int, steps_per_epoch: int, **knobs: Any) -> LRSchedule:
    """The lr schedule `name` (none | cosine | onecycle | plateau) for a run of `epochs` epochs.

    `knobs`: the schedule's keys (cosine: min_lr; onecycle: pct_start, div_factor, final_div_factor; plateau:
    monitor, factor, patience, min_lr), with their defaults in seg/schema.py.
    """
    if name == "none":
        return LRSchedule(None, per_batch=False)
    if name == "cosine":
        return LRSchedule(CosineAnnealingLR(optimizer, T_max=epochs, eta_min=knobs["min_lr"]), per_batch=False)
    if name == "onecycle":
        max_lr = [group["lr"] for group in optimizer.param_groups]
        scheduler = OneCycleLR(optimizer, max_lr=max_lr, epochs=epochs, steps_per_epoch=steps_per_epoch, **knobs)
        return LRSchedule(scheduler, per_batch=True)
    if name == "plateau":
        monitor = knobs.pop("monitor")
        mode = "max" if monitor == "val/dice" else "min"
        return LRSchedule(ReduceLROnPlateau(optimizer, mode=mode, **knobs), per_batch=False, monitor=monitor)
    raise ValueError(f"unknown scheduler.name={name!r}; allowed: none, cosine, onecycle, plateau")
