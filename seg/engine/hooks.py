"""The training loop's hooks: metrics history, checkpoints, W&B tracking and early stopping."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from seg.engine.ema import WeightAverage
from seg.engine.fit import Hook, Stop, TrainState
from seg.engine.history import History
from seg.engine.runtime import rng_state
from seg.engine.tracking import WandbTracker
from seg.rundir import Checkpoint, RunDir, Status, save_checkpoint

if TYPE_CHECKING:
    from seg.engine.parts import Training

log = logging.getLogger("seg.train")


class HistoryHook(Hook):
    """metrics.csv gets the epoch's row; curves.png is redrawn with the best epoch marked."""

    def __init__(self, run: RunDir, state: TrainState, title: str, subtitle: str):
        self.history = History(run, completed_epochs=state.epoch)
        self.title, self.subtitle = title, subtitle

    def on_epoch(self, state: TrainState, row: dict[str, float], improved: bool) -> None:
        self.history.append(row)
        self.history.plot(self.title, self.subtitle, state.best_epoch)


class CheckpointHook(Hook):
    """best.pt when val Dice improved, and last.pt after every epoch (only finite epochs reach a hook); with an
    `ema`, its weights as ema.pt (no optimizer state: not for resuming) and its state in last.pt, written last."""

    def __init__(self, run: RunDir, t: Training, config_yaml: str, ema: WeightAverage | None = None):
        self.run, self.t, self.config_yaml, self.ema = run, t, config_yaml, ema

    def on_epoch(self, state: TrainState, row: dict[str, float], improved: bool) -> None:
        ckpt = Checkpoint(
            model=self.t.model.state_dict(), config=self.config_yaml, epoch=state.epoch,
            state=dataclasses.asdict(state),
            optimizer=self.t.optimizer.state_dict(), schedule=self.t.schedule.state_dict(),
            scaler=self.t.scaler.state_dict(), rng=rng_state(),
        )  # fmt: skip
        if improved:
            save_checkpoint(ckpt, self.run.best)
        if self.ema is not None:
            save_checkpoint(dataclasses.replace(ckpt, model=self.ema.weights, optimizer={}), self.run.ema)
            ckpt.ema = self.ema.state_dict()
        try:
            save_checkpoint(ckpt, self.run.last)
        except OSError:
            state.epoch -= 1  # last.pt still holds the epoch before (it is written atomically): so does the summary
            raise


class TrackerHook(Hook):
    """The epoch's metrics to W&B, and every `images_every` epochs a panel of val predictions."""

    def __init__(self, tracker: WandbTracker, t: Training, images_every: int, num_images: int):
        self.tracker, self.t = tracker, t
        self.images_every, self.num_images = images_every, num_images

    def on_epoch(self, state: TrainState, row: dict[str, float], improved: bool) -> None:
        self.tracker.log(row)
        if self.tracker.active and self.images_every and state.epoch % self.images_every == 0:
            self.tracker.log_examples(
                state.epoch, self.t.model, self.t.datasets["val"], self.num_images, self.t.device, self.t.cfg.threshold
            )


class EarlyStopHook(Hook):
    """Stop when val Dice has not improved for `patience` epochs."""

    def __init__(self, patience: int):
        self.patience = patience

    def stop(self, state: TrainState, row: dict[str, float]) -> Stop | None:
        if state.stale_epochs >= self.patience:
            return Stop(Status.COMPLETED, f"early stop: val/dice has not improved for {state.stale_epochs} epochs")
        return None
