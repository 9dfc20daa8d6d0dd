"""One training run in its run directory: build, restore a resume, fit with the hooks, test best.pt, last.pt (and
ema.pt), summarise.

seg.train (the Hydra entry point) decides the config and the run directory and calls `train`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import yaml

from seg.build import build_training
from seg.config import to_yaml
from seg.constants import CHECKPOINTS
from seg.engine.ema import WeightAverage
from seg.engine.evaluation import Evaluation, evaluate_dataset
from seg.engine.fit import Hook, TrainState, fit
from seg.engine.hooks import CheckpointHook, EarlyStopHook, HistoryHook, TrackerHook
from seg.engine.parts import Training
from seg.engine.runtime import restore_rng_state
from seg.engine.stopping import Interrupted
from seg.engine.tracking import WandbTracker
from seg.errors import find_user_error
from seg.files import atomic_write
from seg.inference import Averaged, load_weights
from seg.resume import Resume
from seg.rundir import RunDir, Status, Summary, load_checkpoint
from seg.schema import TrainConfig

log = logging.getLogger("seg.train")


def describe(cfg: TrainConfig) -> str:
    """The few settings that define a run, for plot titles: model, augmentation, schedule, lr, size, seed."""
    return (
        f"{cfg.model.name} (base {cfg.model.base_channels}), aug {cfg.augmentation.name}, {cfg.loss.name}, "
        f"{cfg.optimizer.name} lr {cfg.optimizer.lr:g}, {cfg.scheduler.name}, {cfg.data.image_size} px, "
        f"batch {cfg.data.batch_size}, seed {cfg.seed}"
    )


def train(
    cfg: TrainConfig, run: RunDir, *, resume: Resume | None = None,
    extra_hooks: Sequence[Hook] = (),
) -> Summary:  # fmt: skip
    """Train as `cfg` says into `run`; returns the summary (also summary.json). Interrupted and errors propagate
    after summary.json says `interrupted` / `failed`; best.pt and last.pt only ever hold finite finished epochs."""
    t = build_training(cfg)
    state = _restore(t, resume) if resume else TrainState()
    main = t.ctx.is_main
    config_yaml = to_yaml(cfg)
    summary = Summary(Status.RUNNING, str(run.path))
    tracker = _open_run(run, cfg, config_yaml, summary, state) if main else WandbTracker.off()
    hooks = _hooks(t, run, state, tracker, config_yaml, resume, extra_hooks)
    try:
        stop = fit(t, state, hooks)
        if state.best_dice <= 0:
            summary.warnings.append(
                "val Dice stayed 0.0: the model predicts no pet pixel; check optimizer.lr, the data and threshold"
            )
            log.warning(summary.warnings[-1])
        pruned = stop is not None and stop.status == Status.PRUNED  # a pruned trial is not worth a test pass
        if cfg.trainer.test_after_fit and main and state.best_epoch > 0 and not pruned:  # finished once tested
            _test_checkpoints(t, run, summary, tracker)
        summary.status = stop.status if stop else Status.COMPLETED
    except Interrupted as e:
        summary.status, summary.error = Status.INTERRUPTED, f"{e.signal_name} after epoch {state.epoch}"
        raise
    except Exception as e:
        summary.status, summary.error = Status.FAILED, str(find_user_error(e) or repr(e))
        raise
    finally:
        if main:
            run.write_summary(_with_state(summary, state))
            if not summary.status.finished:
                tracker.finish(exit_code=1)
    if cfg.logger.log_checkpoints and run.best.is_file():
        tracker.log_checkpoint(run.best, state.best_epoch, {"val/dice": state.best_dice})
    tracker.finish(exit_code=0)
    return summary


def _open_run(run: RunDir, cfg: TrainConfig, config_yaml: str, summary: Summary, state: TrainState) -> WandbTracker:
    """Rank 0: config.yaml and a `running` summary.json in the run directory, and its W&B run (resumed by id)."""
    atomic_write(run.config, config_yaml.encode())
    run.write_summary(_with_state(summary, state))
    tracker = WandbTracker.for_logger(cfg.logger, run.path, yaml.safe_load(config_yaml), run_id=state.wandb_id)
    state.wandb_id = tracker.run_id
    return tracker


def _hooks(t: Training, run: RunDir, state: TrainState, tracker: WandbTracker, config_yaml: str,
           resume: Resume | None, extra_hooks: Sequence[Hook]) -> list[Hook]:  # fmt: skip
    """What runs after each epoch: on rank 0 the history, checkpoints (and the EMA's), W&B and a search's pruner
    (its decision is broadcast); on every rank early stopping."""
    cfg, hooks = t.cfg, []
    if t.ctx.is_main:
        ema = _weight_average(t, resume) if cfg.trainer.ema_decay else None
        images_every = getattr(cfg.logger, "log_images_every", 0)
        hooks += [HistoryHook(run, state, cfg.name, describe(cfg)), CheckpointHook(run, t, config_yaml, ema),
                  TrackerHook(tracker, t, images_every, getattr(cfg.logger, "num_images", 0))]  # fmt: skip
    if cfg.trainer.early_stop_patience:
        hooks.append(EarlyStopHook(cfg.trainer.early_stop_patience))
    if t.ctx.is_main:
        hooks += extra_hooks
    return hooks


def _test_checkpoints(t: Training, run: RunDir, summary: Summary, tracker: WandbTracker) -> None:
    """Each checkpoint of CHECKPOINTS the run has, on the test split: its metrics in the summary, its per-image CSV,
    its W&B tables; with trainer.test_tta also each with that test-time augmentation (summary.test_tta and
    test_per_image_tta.csv ...), the plain test staying what summary.test holds."""
    tta = t.cfg.trainer.test_tta
    summary.tta = None if tta == "none" else tta
    for name in (c for c in CHECKPOINTS if run.checkpoint(c).is_file()):
        result = test_checkpoint(t, run, name)
        if name == "best":
            summary.test = result.metrics()
        else:
            summary.test_of[name] = result.metrics()
        result.write_per_image(run.test_per_image_of(name))
        tracker.log_evaluation("test" if name == "best" else f"test_{name}", result)
        if tta != "none":
            result = test_pass(t, tta)
            summary.test_tta[name] = result.metrics()
            log.info("test (%s.pt, TTA %s): dice %.4f", name, tta, summary.test_tta[name]["dice"])
            result.write_per_image(run.test_per_image_of(name, tta=True))
            tracker.log_evaluation(("test" if name == "best" else f"test_{name}") + "_tta", result)


def test_checkpoint(t: Training, run: RunDir, name: str) -> Evaluation:
    """checkpoints/<name>.pt (one of CHECKPOINTS) on the whole test split, through the same evaluation as
    seg.evaluate. The model keeps those weights."""
    path = run.checkpoint(name)
    ckpt = load_checkpoint(path, t.device)
    load_weights(t.model, ckpt, path)
    result = test_pass(t)
    m = result.metrics()
    log.info("test (%s.pt, epoch %d): dice %.4f, pooled dice %.4f, %d images", name, ckpt.epoch, m["dice"],
             m["dice_pooled"], m["count"])  # fmt: skip
    return result


def test_pass(t: Training, tta: str = "none") -> Evaluation:
    """The model as it is, on the whole test split, with the run's loss, threshold, batch size and precision, and
    test-time augmentation `tta` (seg.inference.TTA_FLIPS)."""
    cfg = t.cfg
    model = t.model if tta == "none" else Averaged([t.model], tta)
    return evaluate_dataset(
        model, t.datasets["test"], loss_fn=t.loss_fn, threshold=cfg.threshold, batch_size=cfg.data.batch_size,
        num_workers=cfg.data.num_workers, device=t.device, precision=t.precision,
        channels_last=cfg.trainer.channels_last,
    )  # fmt: skip


def _restore(t: Training, resume: Resume) -> TrainState:
    ckpt = resume.checkpoint
    load_weights(t.model, ckpt, resume.run.last)
    t.optimizer.load_state_dict(ckpt.optimizer)
    t.schedule.load_state_dict(ckpt.schedule)
    t.scaler.load_state_dict(ckpt.scaler)
    restore_rng_state(ckpt.rng)
    log.info("Resumed %s after epoch %d", resume.run.path, ckpt.epoch)
    return TrainState(**ckpt.state)


def _weight_average(t: Training, resume: Resume | None) -> WeightAverage:
    """The run's EMA of the weights, following its optimizer; a resume continues the average last.pt holds."""
    ema = WeightAverage(t.model, t.cfg.trainer.ema_decay)
    if resume is not None and resume.checkpoint.ema is not None:
        ema.load_state_dict(resume.checkpoint.ema)
    ema.follow(t.optimizer)
    return ema


def _with_state(summary: Summary, state: TrainState) -> Summary:
    summary.best_val_dice = sweep_value(state.best_dice)
    summary.best_epoch, summary.epochs, summary.seconds = state.best_epoch, state.epoch, round(state.seconds, 3)
    return summary


def sweep_value(value: float) -> float:
    """The objective a sweep sees: best val Dice, with NaN, inf or 'no epoch' as 0.0."""
    return float(value) if math.isfinite(value) and value >= 0 else 0.0

