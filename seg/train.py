"""Train one model: `python -m seg.train [group=option ...] [key=value ...]`.

Reads the composed config once, builds data, model, loss, optimizer and schedule, then trains,
validating every epoch. Writes into the run directory: the resolved config (.hydra/), metrics.csv,
curves.png, checkpoints/{best,last}.pt, summary.json and the offline W&B run. Returns the best val
Dice (NaN or inf -> 0.0), which multirun sweeps and Optuna maximise.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DistributedSampler

from seg.config import data_kwargs, register_resolvers, validate_config
from seg.data import build_datasets
from seg.engine import checkpoint as ckpt_io
from seg.engine.distributed import (
    DistContext,
    ShardSampler,
    broadcast_object,
    init_distributed,
    reduce_meter,
    shutdown_distributed,
)
from seg.engine.history import History
from seg.engine.loop import batches, evaluate, train_one_epoch
from seg.engine.optim import build_optimizer, build_schedule
from seg.engine.progress import progress
from seg.engine.runtime import (
    Precision,
    make_loader,
    reseed_loader,
    resolve_device,
    reuse_host_memory,
    seed_everything,
    sigint_deferred,
)
from seg.engine.tracking import WandbTracker
from seg.errors import SegError, exit_on_user_error, find_user_error
from seg.metrics import SegmentationMeter
from seg.sweep.pruning import TrialPruner

log = logging.getLogger("seg.train")
register_resolvers()


EPOCH_LINE = (
    "train loss {0[train/loss]:.4f} dice {0[train/dice]:.4f} | val loss {0[val/loss]:.4f} "
    "dice {0[val/dice]:.4f} | lr {0[lr]:.2e} | {0[seconds]:.1f}s"
)


@dataclass
class TrainState:
    """What a resumed run needs besides the weights: progress and the best score so far."""

    epoch: int = 0  # completed epochs
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


def fit(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train as `cfg` says, writing into `run_dir`; returns the run summary (also summary.json)."""
    validate_config(cfg)
    trainer = cfg.trainer
    ctx, device = init_distributed(trainer.strategy, resolve_device(trainer.device))
    precision = Precision.resolve(trainer.precision, device)
    seed_everything(cfg.seed, trainer.deterministic)
    if device.type == "cpu" and trainer.reuse_host_memory:
        reuse_host_memory()

    datasets = build_datasets(**data_kwargs(cfg))
    train_loader, val_loader = _loaders(cfg, datasets, ctx, device)
    channels_last = bool(trainer.channels_last)

    model = instantiate(cfg.model)
    if ctx.enabled and trainer.sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    net = (
        nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.local_rank] if device.type == "cuda" else None
        )
        if ctx.enabled
        else model
    )
    loss_fn = instantiate(cfg.loss)
    optimizer = build_optimizer(model.parameters(), **cfg.optimizer)
    steps_per_epoch = min(len(train_loader), trainer.limit_train_batches or len(train_loader))
    schedule_args = {k: v for k, v in cfg.scheduler.items() if k != "name"}
    schedule = build_schedule(optimizer, cfg.scheduler.name, trainer.epochs, steps_per_epoch, **schedule_args)
    scaler = precision.grad_scaler()

    state = TrainState()
    if cfg.resume:
        state = TrainState(**ckpt_io.restore_training(cfg.resume, model, optimizer, schedule, scaler, device))
        log.info("Resumed from %s after epoch %d", cfg.resume, state.epoch)
    resolved_config = OmegaConf.to_yaml(cfg, resolve=True)
    if ctx.is_main:
        (run_dir / "config.yaml").write_text(resolved_config)
    history = History(run_dir, completed_epochs=state.epoch) if ctx.is_main else None
    tracker = _tracker(cfg, run_dir, state.wandb_id) if ctx.is_main else WandbTracker.off()
    state.wandb_id = tracker.run_id
    summary = {"status": "running", "run_dir": str(run_dir)}
    pruner = TrialPruner.from_config(cfg.get("pruning")) if ctx.is_main else None

    def checkpoint(name: str) -> None:
        ckpt_io.save_checkpoint(
            {
                "model_class": type(model).__name__,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": state.epoch,
                "state": asdict(state),
                "rng": ckpt_io.rng_state(),
                "config": resolved_config,
            },
            run_dir / "checkpoints" / name,
        )

    try:
        for epoch in progress(range(state.epoch + 1, trainer.epochs + 1), trainer.progress, desc="epochs"):
            started = time.perf_counter()
            reseed_loader(train_loader, cfg.seed, epoch)
            train_data = batches(train_loader, device, channels_last, trainer.limit_train_batches)
            train_meter = train_one_epoch(
                net, progress(train_data, trainer.progress, total=steps_per_epoch, desc=f"epoch {epoch}"),
                loss_fn, optimizer, schedule, scaler, precision, _meter(cfg, device), epoch, trainer.grad_clip,
            )  # fmt: skip
            val_data = batches(val_loader, device, channels_last, trainer.limit_val_batches)
            val_meter = evaluate(net, val_data, loss_fn, precision, _meter(cfg, device))
            train_m, val_m = reduce_meter(train_meter, ctx), reduce_meter(val_meter, ctx)
            lr = optimizer.param_groups[0]["lr"]
            schedule.after_epoch(val_m)

            row = {
                "epoch": epoch, "train/loss": train_m["loss"], "train/dice": train_m["dice"],
                "val/loss": val_m["loss"], "val/dice": val_m["dice"], "lr": lr,
                "seconds": time.perf_counter() - started,
            }  # fmt: skip
            log.info("epoch %d/%d  %s", epoch, trainer.epochs, EPOCH_LINE.format(row))
            with sigint_deferred():  # Ctrl-C lands after the epoch's bookkeeping: last.pt == state
                improved = state.record(epoch, val_m["dice"], row["seconds"])
                if ctx.is_main:
                    history.append(row)
                    history.plot()
                    tracker.log(row)
                    if improved:
                        checkpoint("best.pt")
                    checkpoint("last.pt")
            images_every = cfg.logger.get("log_images_every", 0)
            if ctx.is_main and tracker.active and images_every and epoch % images_every == 0:
                tracker.log_examples(epoch, model, datasets["val"], cfg.logger.num_images, device)
            if trainer.early_stop_patience and state.stale_epochs >= trainer.early_stop_patience:
                log.info("Early stop: val/dice has not improved for %d epochs", state.stale_epochs)
                break
            # every epoch is reported to the study; the last one completes the trial rather than prune it
            prune = pruner is not None and pruner.report(epoch, val_m["dice"]) and epoch < trainer.epochs
            if broadcast_object(prune, ctx):
                log.info(
                    "Pruned at epoch %d: val/dice %.4f is below the median of earlier trials",
                    epoch,
                    val_m["dice"],
                )
                summary.update(status="pruned")
                break
        if summary["status"] == "running":
            summary.update(status="completed")
    except KeyboardInterrupt:
        summary.update(status="interrupted", error=f"interrupted after epoch {state.epoch}")
        raise
    except Exception as e:
        summary.update(status="failed", error=str(find_user_error(e) or repr(e)))
        raise
    finally:
        summary.update(_state_summary(state))
        if ctx.is_main:
            _write_summary(run_dir, summary)
            tracker.finish(exit_code=0 if summary["status"] in ("completed", "pruned") else 1)

    if trainer.test_after_fit and ctx.is_main and state.best_epoch > 0:
        summary["test"] = _test_best(cfg, model, datasets["test"], loss_fn, precision, device, run_dir)
        _write_summary(run_dir, summary)
    return summary


def _loaders(cfg: DictConfig, datasets: dict, ctx: DistContext, device: torch.device) -> tuple:
    """Train loader (shuffled; DistributedSampler under DDP) and val loader (sharded without padding)."""
    data = cfg.data
    if len(datasets["train"]) == 0 or len(datasets["val"]) == 0:
        raise SegError(
            f"empty split in {data.root}: train {len(datasets['train'])}, val {len(datasets['val'])}"
        )
    pin = device.type == "cuda"
    train_sampler = (
        DistributedSampler(datasets["train"], ctx.world_size, ctx.rank, shuffle=True, seed=cfg.seed)
        if ctx.enabled
        else None
    )
    val_sampler = ShardSampler(datasets["val"], ctx) if ctx.enabled else None
    train = make_loader(datasets["train"], data.batch_size, data.num_workers, True, pin, train_sampler)
    val = make_loader(datasets["val"], data.batch_size, data.num_workers, False, pin, val_sampler)
    return train, val


def _meter(cfg: DictConfig, device: torch.device) -> SegmentationMeter:
    return SegmentationMeter(threshold=cfg.threshold, device=device)


def _tracker(cfg: DictConfig, run_dir: Path, run_id: str | None) -> WandbTracker:
    if cfg.logger.name != "wandb":
        return WandbTracker.off()
    lg = cfg.logger
    return WandbTracker(
        run_dir,
        OmegaConf.to_container(cfg, resolve=True),
        lg.project,
        lg.entity,
        _wandb_group(lg.group),
        lg.job_type,
        list(lg.tags),
        lg.mode,
        run_id,
        lg.get("init_timeout", 60.0),
    )


def _wandb_group(group: str) -> str:
    """One W&B group per sweep: `<group>-<sweep dir name>` (its time), shared by the sweep's jobs only."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return group
    return f"{group}-{Path(HydraConfig.get().sweep.dir).name}"


def _test_best(cfg, model, test_set, loss_fn, precision, device, run_dir: Path) -> dict[str, float]:
    """Test-split metrics of best.pt (the weights with the best val Dice)."""
    ckpt_io.load_model_weights(
        model, ckpt_io.load_checkpoint(run_dir / "checkpoints" / "best.pt", device), "best.pt"
    )
    loader = make_loader(test_set, cfg.data.batch_size, cfg.data.num_workers, False, device.type == "cuda")
    data = batches(loader, device, bool(cfg.trainer.channels_last), cfg.trainer.limit_val_batches)
    metrics = evaluate(model, data, loss_fn, precision, _meter(cfg, device)).compute()
    log.info(
        "test (best.pt, epoch best): dice %.4f, pooled dice %.4f", metrics["dice"], metrics["dice_pooled"]
    )
    return metrics


def _state_summary(state: TrainState) -> dict[str, Any]:
    return {
        "best_val_dice": sweep_value(state.best_dice),
        "best_epoch": state.best_epoch,
        "epochs": state.epoch,
        "seconds": round(state.seconds, 3),
    }


def _write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def sweep_value(value: float) -> float:
    """The objective a sweep sees: best val Dice, with NaN, inf or 'no epoch' as 0.0."""
    return float(value) if math.isfinite(value) and value >= 0 else 0.0


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; user errors are one clear line, and a sweep job never crashes the sweep."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        with exit_on_user_error():
            summary = fit(cfg, _shared_run_dir(run_dir, cfg))
    except KeyboardInterrupt:
        print(f"interrupted: {_resume_hint(run_dir)}", file=sys.stderr)
        sys.exit(130)
    except (Exception, SystemExit) as e:
        _record_failure(run_dir, e)
        if not in_sweep:
            raise
        log.error("job failed, the sweep goes on with 0.0 for it: %s", find_user_error(e) or repr(e))
        return 0.0
    finally:
        shutdown_distributed()
    if os.environ.get("RANK", "0") == "0":
        print(f"Run directory: {summary['run_dir']}")
        print(f"Best val Dice: {summary['best_val_dice']:.4f} (epoch {summary['best_epoch']})")
    return summary["best_val_dice"]


def _resume_hint(run_dir: Path) -> str:
    last = run_dir / "checkpoints" / "last.pt"
    if not last.is_file():
        return "no epoch had finished, so there is nothing to resume"
    epoch = ckpt_io.load_checkpoint(last)["epoch"]
    return f"{last} holds epoch {epoch}; continue with: python -m seg.train ... resume={run_dir}"


def _record_failure(run_dir: Path, error: BaseException) -> None:
    """Keep the summary fit() wrote (it has the epochs done); else write a failed one."""
    if not (run_dir / "summary.json").is_file():
        message = find_user_error(error) or f"{type(error).__name__}: {error}"
        _write_summary(run_dir, {"status": "failed", "error": str(message)})


def _shared_run_dir(run_dir: Path, cfg: DictConfig) -> Path:
    """Under torchrun every rank writes into rank 0's run directory (other ranks' own are removed)."""
    if cfg.trainer.strategy != "ddp":
        return run_dir
    ctx, _ = init_distributed("ddp", resolve_device(cfg.trainer.device))
    shared = Path(broadcast_object(str(run_dir), ctx))
    if shared != run_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
    return shared


if __name__ == "__main__":
    main()
