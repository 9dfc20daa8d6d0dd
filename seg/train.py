"""Train one model: `python -m seg.train [group=option ...] [key=value ...]` (installed as `seg-train`).

The entry point only decides: the checked config (seg.config), a resume (seg.resume), the run directory
(seg.rundir) and, inside an Optuna search, the pruner hook (seg.sweep.pruning); seg.training does the run.
Returns the best val Dice (NaN or inf -> 0.0), which multirun sweeps and Optuna maximise.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from seg.claims import ClaimBusy
from seg.config import CONF_DIR, register, typed_config
from seg.engine.distributed import broadcast_object, init_distributed, shutdown_distributed
from seg.engine.runtime import Interrupted, resolve_device, stop_signals_interrupt
from seg.errors import SegError, exit_on_user_error, find_user_error
from seg.resume import claim_run, resume_run
from seg.rundir import RunDir, Status, Summary, load_checkpoint, remove_if_unused
from seg.schema import TrainConfig
from seg.sweep.pruning import pruning_hooks
from seg.training import train
from seg.wandb_names import tracking_names

log = logging.getLogger("seg.train")
register()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; user errors are one clear line, and a sweep job never crashes the sweep."""
    hydra_cfg = HydraConfig.get()
    hydra_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    stop_signals_interrupt()
    run = RunDir(hydra_dir)
    claim = None
    try:
        with exit_on_user_error():
            try:
                typed: TrainConfig = typed_config(cfg)
                claim = claim_run(typed, hydra_dir)  # one writer per run: before anything is read or written
                if typed.resume is None and in_sweep and requeued(RunDir(hydra_dir)):
                    typed = dataclasses.replace(typed, resume=str(hydra_dir))
                resume = resume_run(typed, list(hydra_cfg.overrides.task)) if typed.resume else None
            except SegError:
                if not in_sweep:
                    remove_if_unused(hydra_dir)  # an invalid config leaves no folder behind
                raise
            if resume is not None:
                run = resume.run
                done = run.read_summary()
                if resume.extended_from is None and done is not None and done.status.finished:
                    print(f"{run.path} already finished ({done.status.value}, {done.epochs} epochs): nothing to do")
                    remove_if_unused(hydra_dir)
                    return done.best_val_dice
                if run.path.resolve() != hydra_dir.resolve():  # a requeued job's own log is already the run's
                    _log_to(run.log)
            else:
                run = RunDir(shared_run_dir(hydra_dir, typed))
            config = resume.config if resume else typed
            config = tracking_names(config, hydra_cfg)  # its W&B group, name and tags, decided here once
            summary = train(config, run, resume=resume,
                            extra_hooks=pruning_hooks(config.pruning, config.trainer.epochs))  # fmt: skip
    except Interrupted as e:
        print(f"interrupted ({e.signal_name}): {resume_hint(run)}", file=sys.stderr)
        sys.exit(143 if e.signal_name == "SIGTERM" else 130)
    except (Exception, SystemExit) as e:
        if isinstance(e, SystemExit) and find_user_error(e) is None:
            raise  # an exit the job did not decide, e.g. submitit's once it requeued the job: no result, no failure
        record_failure(run, e)
        if not in_sweep:
            raise
        log.error("job failed, the sweep goes on with 0.0 for it: %s", find_user_error(e) or repr(e))
        return 0.0
    finally:
        if claim is not None:
            claim.release()
        shutdown_distributed()
    if os.environ.get("RANK", "0") == "0":
        print(f"Run directory: {summary.run_dir}")
        print(f"Best val Dice: {summary.best_val_dice:.4f} (epoch {summary.best_epoch})")
    return summary.best_val_dice


def requeued(run: RunDir) -> bool:
    """A sweep job whose directory already holds a last.pt continues from it instead of starting over: a job SLURM
    requeued (preemption, time limit: the same job directory and overrides), or a study run that another command
    trained or finished since this command planned it (a finished one then has nothing to do)."""
    return run.last.is_file()


def resume_hint(run: RunDir) -> str:
    """Where the run stands and the exact command that continues it."""
    if not run.last.is_file():
        return "no epoch had finished, so there is nothing to resume"
    epoch = load_checkpoint(run.last).epoch
    launcher = "torchrun --nproc_per_node=" + os.environ["WORLD_SIZE"] if "WORLD_SIZE" in os.environ else "python"
    return f"{run.last} holds epoch {epoch}; continue with: {launcher} -m seg.train resume={run.path.resolve()}"


def record_failure(run: RunDir, error: BaseException) -> None:
    """Keep the summary the run wrote (it has the epochs done); else write a failed one. A run another command
    holds (ClaimBusy) is theirs: nothing is written."""
    if isinstance(find_user_error(error), ClaimBusy):
        return
    if run.path.is_dir() and not run.summary_file.is_file():
        message = find_user_error(error) or f"{type(error).__name__}: {error}"
        run.write_summary(Summary(Status.FAILED, str(run.path), error=str(message)))


def shared_run_dir(run_dir: Path, cfg: TrainConfig) -> Path:
    """Under torchrun every rank writes into rank 0's run directory (other ranks' own are removed)."""
    if cfg.trainer.strategy != "ddp":
        return run_dir
    ctx, _ = init_distributed("ddp", resolve_device(cfg.trainer.device))
    shared = Path(broadcast_object(str(run_dir), ctx))
    if shared != run_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
    return shared


def _log_to(path: Path) -> None:
    """Append this process's log to the resumed run's train.log."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s", "%H:%M:%S"))
    logging.getLogger().addHandler(handler)


if __name__ == "__main__":
    main()
