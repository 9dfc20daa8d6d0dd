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
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from seg.claims import ClaimBusy
from seg.config import CONF_DIR, HYDRA_VERSION_BASE, register, typed_config
from seg.engine.distributed import broadcast_object, init_distributed, shutdown_distributed
from seg.engine.runtime import freeze_imports, resolve_device
from seg.engine.stopping import Interrupted, stop_signals_interrupt
from seg.errors import SegError, exit_on_user_error, find_user_error
from seg.files import open_append
from seg.resume import Resume, claim_run, resume_run
from seg.rundir import RunDir, Status, Summary, load_checkpoint, remove_if_unused
from seg.schema import TrainConfig
from seg.sweep.pruning import pruning_hooks
from seg.wandb_names import tracking_names

log = logging.getLogger("seg.train")
register()


class Action(Enum):
    """What one seg.train command does."""

    NEW = "new"  # a new run in Hydra's run (or sweep job) directory
    RESUME = "resume"  # resume=<run>: continue (or extend) that run from its last.pt
    REQUEUE = "requeue"  # a sweep job whose directory already holds a last.pt (SLURM requeue, a study run): continue it
    NOTHING = "nothing"  # the run it would resume has already finished


@dataclass
class Decision:
    """An Action, with the config and run directory it works on."""

    action: Action
    config: TrainConfig
    run: RunDir
    resume: Resume | None = None
    finished: Summary | None = None  # NOTHING: the finished run's summary


def decide(typed: TrainConfig, hydra_dir: Path, in_sweep: bool, task_overrides: list[str]) -> Decision:
    """What this command does, before anything is written (SegError when the resume is refused)."""
    if typed.resume is None and in_sweep and requeued(RunDir(hydra_dir)):
        action, typed = Action.REQUEUE, dataclasses.replace(typed, resume=str(hydra_dir))
    elif typed.resume is None:
        return Decision(Action.NEW, typed, RunDir(hydra_dir))
    else:
        action = Action.RESUME
    resume = resume_run(typed, task_overrides)
    done = resume.run.read_summary()
    if resume.extended_from is None and done is not None and done.status.finished:
        return Decision(Action.NOTHING, resume.config, resume.run, resume, finished=done)
    return Decision(action, resume.config, resume.run, resume)


@hydra.main(version_base=HYDRA_VERSION_BASE, config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point: decide, then train; user errors are one clear line, a sweep job never crashes the sweep."""
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
                decision = decide(typed, hydra_dir, in_sweep, list(hydra_cfg.overrides.task))
            except SegError:
                if not in_sweep:
                    remove_if_unused(hydra_dir)  # an invalid config leaves no folder behind
                raise
            if decision.action is Action.NOTHING:
                done, path = decision.finished, decision.run.path
                print(f"{path} already finished ({done.status.value}, {done.epochs} epochs): nothing to do")
                remove_if_unused(hydra_dir)
                return done.best_val_dice
            run = run_dir_of(decision, hydra_dir)
            from seg.training import train  # the data, model and plot stack: imported once there is a run to train

            freeze_imports()
            config = tracking_names(decision.config, hydra_cfg)  # its W&B group, name and tags, decided here once
            summary = train(config, run, resume=decision.resume,
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


def run_dir_of(decision: Decision, hydra_dir: Path) -> RunDir:
    """The run directory this process writes: a resumed run (its train.log gets this command's log), or the new
    run's (rank 0's under torchrun)."""
    if decision.action is Action.NEW:
        return RunDir(shared_run_dir(hydra_dir, decision.config))
    if decision.run.path.resolve() != hydra_dir.resolve():  # a requeued job's own log is already the run's
        _log_to(decision.run.log)
    return decision.run


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
    """Append this process's log to the resumed run's train.log (never through a symlink planted there)."""
    handler = logging.StreamHandler(open_append(path))
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s", "%H:%M:%S"))
    logging.getLogger().addHandler(handler)


if __name__ == "__main__":
    main()
