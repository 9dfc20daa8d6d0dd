"""The training loop, top to bottom: train an epoch, validate, hand the epoch to the hooks, maybe stop.

Everything a run does besides the math is a hook (seg/engine/hooks.py: metrics history, checkpoints, W&B,
early stopping; an Optuna search adds its pruner, seg/sweep/pruning.py). The loop never writes a file itself.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from seg.engine.distributed import broadcast_object, reduce_meter
from seg.engine.loop import batches, evaluate, train_one_epoch
from seg.engine.progress import progress, show_epoch
from seg.engine.runtime import reseed_loader
from seg.engine.stopping import interrupts_deferred
from seg.errors import NonFiniteError
from seg.metrics import SegmentationMeter
from seg.rundir import Status

if TYPE_CHECKING:
    from seg.engine.parts import Training

log = logging.getLogger("seg.train")

EPOCH_LINE = (
    "train loss {0[train/loss]:.4f} dice {0[train/dice]:.4f} | val loss {0[val/loss]:.4f} "
    "dice {0[val/dice]:.4f} | lr {0[lr]:.2e} | {0[seconds]:.1f}s"
)


@dataclass
class TrainState:
    """What a resumed run needs besides the weights: progress and the best score so far."""

    epoch: int = 0  # finished epochs
    best_dice: float = -1.0
    best_epoch: int = 0
    stale_epochs: int = 0  # epochs since the best, for early stopping
    seconds: float = 0.0
    wandb_id: str | None = None

    def record(self, epoch: int, val_dice: float, seconds: float) -> bool:
        """Count epoch `epoch` as done; True when its val Dice is a new best."""
        self.epoch = epoch
        self.seconds += seconds
        improved = val_dice > self.best_dice
        if improved:
            self.best_dice, self.best_epoch, self.stale_epochs = val_dice, epoch, 0
        else:
            self.stale_epochs += 1
        return improved


@dataclass(frozen=True)
class Stop:
    """A hook's request to end the run after this epoch: the status it ends with and why."""

    status: Status
    reason: str


class Hook:
    """Called by `fit`. `on_epoch` runs with SIGINT/SIGTERM held, so an epoch's bookkeeping is never cut in half."""

    def on_epoch(self, state: TrainState, row: dict[str, float], improved: bool) -> None:
        """Epoch `state.epoch` finished with the metrics `row` (improved: a new best val Dice)."""

    def stop(self, state: TrainState, row: dict[str, float]) -> Stop | None:
        """A Stop to end the run now, or None to go on."""
        return None


def fit(t: Training, state: TrainState, hooks: Sequence[Hook]) -> Stop | None:
    """Train from epoch `state.epoch + 1` to `trainer.epochs`; returns the Stop a hook asked for, or None.

    Raises NonFiniteError when a loss or a weight stops being finite (before any hook sees that epoch).
    """
    trainer, meter = t.cfg.trainer, lambda: SegmentationMeter(threshold=t.cfg.threshold, device=t.device)
    epochs = progress(range(state.epoch + 1, trainer.epochs + 1), trainer.progress, desc="epochs",
                      initial=state.epoch, total=trainer.epochs)  # a resumed run's bar starts at its epoch
    for epoch in epochs:
        started = time.perf_counter()
        reseed_loader(t.train_loader, t.seeds.order, epoch, t.seeds.augmentation)
        train_data = batches(t.train_loader, t.device, trainer.channels_last, trainer.limit_train_batches)
        train_bar = progress(train_data, trainer.progress, total=t.steps_per_epoch, desc=f"epoch {epoch}")
        train = train_one_epoch(
            t.net, train_bar, t.loss_fn, t.optimizer, t.schedule, t.scaler, t.precision, meter(), epoch,
            trainer.grad_clip,
        )  # fmt: skip
        val_data = batches(t.val_loader, t.device, trainer.channels_last, trainer.limit_val_batches)
        val = evaluate(t.net, val_data, t.loss_fn, t.precision, meter())
        train_m, val_m = reduce_meter(train, t.ctx), reduce_meter(val, t.ctx)
        check_finite(epoch, train_m["loss"], val_m["loss"], t.model, t.precision.dtype is None)
        row = {
            "epoch": epoch, "train/loss": train_m["loss"], "train/dice": train_m["dice"],
            "val/loss": val_m["loss"], "val/dice": val_m["dice"], "lr": t.optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started,
        }  # fmt: skip
        t.schedule.after_epoch(val_m)
        log.info("epoch %d/%d  %s", epoch, trainer.epochs, EPOCH_LINE.format(row))
        show_epoch(epochs, row)
        with interrupts_deferred():
            improved = state.record(epoch, val_m["dice"], row["seconds"])
            for hook in hooks:
                hook.on_epoch(state, row, improved)
        stop = broadcast_object(next((s for h in hooks if (s := h.stop(state, row)) is not None), None), t.ctx)
        if stop is not None:
            log.info("Stopped after epoch %d: %s", epoch, stop.reason)
            return stop
    return None


def check_finite(epoch: int, train_loss: float, val_loss: float, model: torch.nn.Module,
                 full_precision: bool = False) -> None:  # fmt: skip
    """NonFiniteError when the epoch's losses or the model's weights are NaN or inf (`full_precision`: the run is
    at trainer.precision=32 already)."""
    if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
        raise NonFiniteError(f"the loss became NaN/inf in epoch {epoch} (train {train_loss}, val {val_loss})",
                             full_precision)  # fmt: skip
    bad = sum(int((~torch.isfinite(p)).any()) for p in model.state_dict().values() if p.is_floating_point())
    if bad:
        raise NonFiniteError(f"{bad} weight tensors became NaN/inf in epoch {epoch}", full_precision)
