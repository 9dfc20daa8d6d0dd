"""Pruning for Optuna searches, which hydra-optuna-sweeper lacks.

A trial job (one `seg.train` run launched by the `seg_optuna` sweeper) reports its val Dice after every
epoch to its trial in the search's study, and stops early when Optuna's median rule says so: after
`warmup_epochs`, once `startup_trials` trials have completed, a trial whose best val Dice so far is below
the median of the completed trials' val Dice at the same epoch is pruned. The sweeper then records the
trial as PRUNED.
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


def pruning_hooks(cfg: PruningConfig | None, epochs: int) -> list[Hook]:
    """The training loop's hook for the `pruning` config node of a run of `epochs` epochs: [] outside a trial."""
    pruner = TrialPruner.from_config(cfg, epochs)
    return [] if pruner is None else [pruner]


class TrialPruner(Hook):
    """Reports one trial's val Dice per epoch to its study and applies the study's median rule."""

    def __init__(self, trial: optuna.trial.Trial, epochs: int):
        self.trial, self.epochs = trial, epochs

    @classmethod
    def from_config(cls, cfg: PruningConfig | None, epochs: int) -> TrialPruner | None:
        """The pruner of the `pruning` config node; None when it is null or the job is not a search trial.

        `cfg.trial` (the trial number) is set per job by the `seg_optuna` sweeper; storage and study_name
        are the sweeper's.
        """
        if cfg is None or cfg.trial is None:
            return None
        if cfg.storage is None:
            log.warning("Pruning is off: the study is in memory (hydra.sweeper.storage=null)")
            return None
        import optuna  # here, so that runs without pruning do not pay for the import

        from seg.sweep.study import open_storage

        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.warmup_epochs, n_min_trials=cfg.min_trials
        )
        storage = optuna.storages.get_storage(open_storage(cfg.storage))
        study = optuna.load_study(study_name=cfg.study_name, storage=storage, pruner=pruner)
        study_id = storage.get_study_id_from_name(cfg.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, int(cfg.trial))
        return cls(optuna.trial.Trial(study, trial_id), epochs)

    def stop(self, state: TrainState, row: dict[str, float]) -> Stop | None:
        """Report the epoch's val Dice (step = epoch) and stop when the study's rule prunes the trial; the last
        epoch completes the trial rather than prune it."""
        self.trial.report(row["val/dice"], step=state.epoch)
        if state.epoch < self.epochs and self.trial.should_prune():
            return Stop(Status.PRUNED, f"pruned: val/dice {row['val/dice']:.4f} is below the median of earlier trials")
        return None
