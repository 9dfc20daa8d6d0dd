"""Pruning for Optuna searches, which hydra-optuna-sweeper lacks.

A trial job (one `seg.train` run launched by the `seg_optuna` sweeper) reports its val Dice after every epoch to
its trial in the search's study, and stops early when the study's pruner says so (`pruning.pruner`):
- median: after `warmup_epochs`, once `startup_trials` trials have completed, a trial whose best val Dice so far is
  below the median of the completed trials' val Dice at the same epoch.
- successive_halving (asynchronous successive halving, ASHA): rungs at epochs min_resource * reduction_factor^k; at
  a rung a trial goes on only when it is in the top 1/reduction_factor of the trials that reached that rung.
- hyperband: several successive-halving brackets (from aggressive to none) up to trainer.epochs, each trial in one.
- none: every trial trains to the end (the reference a pruner is measured against).
The sweeper then records the trial as PRUNED. The last epoch always completes the trial.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from seg.engine.fit import Hook, Stop, TrainState
from seg.rundir import Status
from seg.schema import PruningConfig

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

# Why a trial was pruned, per pruner (the run's log and summary.json say it).
REASONS = {
    "median": "below the median of earlier trials at this epoch",
    "successive_halving": "not in the top 1/{rf} of the trials that reached this epoch's rung",
    "hyperband": "not in the top 1/{rf} of its Hyperband bracket's trials at this epoch's rung",
}


def make_pruner(cfg: PruningConfig | None, epochs: int) -> optuna.pruners.BasePruner:
    """Optuna's pruner for the `pruning` config node, for trials of `epochs` epochs (NopPruner: none or null)."""
    import optuna  # here, so that runs without pruning do not pay for the import

    kind = "none" if cfg is None else cfg.pruner
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.warmup_epochs, n_min_trials=cfg.min_trials
        )
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=cfg.min_resource, reduction_factor=cfg.reduction_factor, bootstrap_count=cfg.bootstrap_count
        )
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=cfg.min_resource,
            max_resource=epochs,
            reduction_factor=cfg.reduction_factor,
            bootstrap_count=cfg.bootstrap_count,
        )
    return optuna.pruners.NopPruner()


def pruning_hooks(cfg: PruningConfig | None, epochs: int) -> list[Hook]:
    """The training loop's hook for the `pruning` config node of a run of `epochs` epochs: [] outside a trial."""
    pruner = TrialPruner.from_config(cfg, epochs)
    return [] if pruner is None else [pruner]


class TrialPruner(Hook):
    """Reports one trial's val Dice per epoch to its study and applies the study's pruner."""

    def __init__(self, trial: optuna.trial.Trial, epochs: int, reason: str):
        self.trial, self.epochs, self.reason = trial, epochs, reason

    @classmethod
    def from_config(cls, cfg: PruningConfig | None, epochs: int) -> TrialPruner | None:
        """The hook of the `pruning` config node; None when it is null or the job is not a search trial.

        `cfg.trial` (the trial number) is set per job by the `seg_optuna` sweeper; storage and study_name
        are the sweeper's. With `pruner: none` the hook still reports val Dice (the study's curves).
        """
        if cfg is None or cfg.trial is None:
            return None
        if cfg.storage is None:
            log.warning("Pruning is off: the study is in memory (hydra.sweeper.storage=null)")
            return None
        import optuna

        from seg.sweep.storage import open_storage, quiet_optuna_logging

        quiet_optuna_logging()
        storage = optuna.storages.get_storage(open_storage(cfg.storage))
        study = optuna.load_study(study_name=cfg.study_name, storage=storage, pruner=make_pruner(cfg, epochs))
        study_id = storage.get_study_id_from_name(cfg.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, int(cfg.trial))
        reason = REASONS.get(cfg.pruner, "").format(rf=cfg.reduction_factor)
        return cls(optuna.trial.Trial(study, trial_id), epochs, reason)

    def stop(self, state: TrainState, row: dict[str, float]) -> Stop | None:
        """Report the epoch's val Dice (step = epoch) and stop when the study's pruner prunes the trial; the last
        epoch completes the trial rather than prune it. A trial that another worker failed meanwhile (this job's
        worker stopped sending heartbeats) stops: its parameters run again as a new trial."""
        try:
            self.trial.report(row["val/dice"], step=state.epoch)
        except RuntimeError as e:  # the trial is finished in the study: "... can not be updated"
            return Stop(Status.FAILED, f"trial {self.trial.number} was ended by another search worker ({e})")
        if state.epoch < self.epochs and self.trial.should_prune():
            return Stop(Status.PRUNED, f"pruned: val/dice {row['val/dice']:.4f} is {self.reason}")
        return None
