"""The search loop of `hydra/sweeper=seg_optuna`, replacing hydra-optuna-sweeper's `sweep()`.

What it changes, and why:
- Resume: the study lives in `hydra.sweeper.storage` under a fixed `study_name`; a rerun runs only
  `n_trials` minus the trials already finished there. Trials an interruption left running are failed
  and their parameters queued again, so no trial is lost or run twice.
- Failures: the plugin aborts on the first failed job (max_failure_rate 0) and crashes on a NaN value.
  Here a trial whose job raised, wrote status failed (e.g. NaN loss) or returned a non-finite value is
  told FAIL, and the search stops only when more than `max_failure_rate * n_trials` trials failed.
- Pruning: each job gets `pruning.trial=<number>` so that it reports val Dice per epoch to its trial
  (seg/sweep/pruning.py); a job whose summary.json says pruned is told PRUNED.
- Results: optimization_results.yaml (best parameters, trial counts, compute saved by pruning) and
  optuna_trials.png in the sweep directory, over all trials of the study.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import OmegaConf
from optuna.trial import Trial, TrialState

from seg.errors import ConfigError, SegError
from seg.rundir import RunDir, Summary
from seg.sweep.plots import plot_search
from seg.sweep.study import counted_trials, open_storage, requeue_interrupted

log = logging.getLogger(__name__)


class SearchAborted(SegError):
    """Too many trials of a search failed."""


class ResumableSearch(OptunaSweeperImpl):
    """hydra-optuna-sweeper's implementation with seg's `sweep()` (see the module docstring)."""

    def sweep(self, arguments: list[str]) -> None:
        self._process_searchspace_config()
        if isinstance(self.sampler, functools.partial):  # the plugin's grid sampler comes as a partial
            raise ConfigError(
                "invalid config: hydra.sweeper.sampler=grid; allowed: tpe, random, cmaes (seg_optuna); "
                "for a grid use the basic sweeper"
            )
        distributions, fixed = create_params_from_overrides(self._parse_sweeper_params_config() + arguments)
        for name in fixed:
            distributions.pop(name, None)
        study = self._open_study()
        done = len(counted_trials(study))
        to_go = max(0, self.n_trials - done)
        log.info(
            "Study %s (%s): %d of %d trials done, %d to run", study.study_name, self.storage, done, self.n_trials, to_go
        )

        failures = 0
        while to_go > 0:
            trials = [study.ask() for _ in range(min(to_go, self.n_jobs))]
            overrides = self._configure_trials(trials, distributions, fixed)
            returns = self.launcher.launch(
                [(*o, *self._trial_overrides(t)) for o, t in zip(overrides, trials)],
                initial_job_idx=self.job_idx,
            )
            self.job_idx += len(returns)
            study = self._reload(study)
            for trial, ret in zip(trials, returns):
                failures += tell(study, trial, ret) == TrialState.FAIL
            to_go -= len(trials)
            if failures > self.max_failure_rate * self.n_trials:
                raise SearchAborted(
                    f"{failures} trials failed, more than hydra.sweeper.max_failure_rate="
                    f"{self.max_failure_rate} of n_trials={self.n_trials}; see the jobs' summary.json and "
                    f"logs in {self.sweep_dir}"
                )
        write_results(study, Path(self.sweep_dir), self.config.trainer.epochs)

    def _open_study(self) -> optuna.Study:
        """Create the study or load it from storage, ready to continue where an earlier run stopped."""
        study = optuna.create_study(
            study_name=self.study_name,
            storage=open_storage(self.storage),
            sampler=self.sampler,
            directions=self._get_directions(),
            load_if_exists=True,
        )
        if len(study.directions) != 1:
            raise ConfigError("invalid config: hydra.sweeper.direction; allowed: one direction (seg_optuna)")
        study.sampler = self._resumed_sampler(len(study.trials))
        requeued = requeue_interrupted(study)
        if requeued:
            log.info("Trials %s were cut short by an interruption: their parameters run again", requeued)
        return study

    def _reload(self, study: optuna.Study) -> optuna.Study:
        """The study read afresh from storage. A Study caches the trials it asked for as its own, but the
        trial jobs wrote their per-epoch values into them from other processes (pruning)."""
        if self.storage is None:
            return study
        return optuna.load_study(study_name=study.study_name, storage=open_storage(self.storage), sampler=study.sampler)

    def _resumed_sampler(self, n_existing: int) -> optuna.samplers.BaseSampler:
        """A rerun's sampler is seeded with seed + the trials already in the study, so that it does not
        draw the first run's parameters again (the same seed would)."""
        sampler_cfg = self.config.hydra.sweeper.sampler
        if n_existing == 0 or sampler_cfg.get("seed") is None:
            return self.sampler
        return instantiate(sampler_cfg, seed=sampler_cfg.seed + n_existing)

    def _trial_overrides(self, trial: Trial) -> tuple[str, ...]:
        """Tell the job its trial number, so that its pruner reports to that trial."""
        return (f"pruning.trial={trial.number}",) if self.config.get("pruning") is not None else ()


def job_outcome(ret: JobReturn) -> tuple[TrialState, float | None]:
    """The trial state and value of a finished job: COMPLETE with a finite value, PRUNED, or FAIL."""
    if ret.status != JobStatus.COMPLETED:
        log.warning("Trial job raised %r: the trial fails, the search goes on", ret._return_value)
        return TrialState.FAIL, None
    summary = _job_summary(ret)
    status = "missing" if summary is None else summary.status.value
    if status == "pruned":
        return TrialState.PRUNED, None
    try:
        value = float(ret.return_value)
    except (TypeError, ValueError):
        value = math.nan
    if status != "completed" or not math.isfinite(value):
        log.warning(
            "Trial job ended with status %s, value %s: the trial fails, the search goes on",
            status,
            ret.return_value,
        )
        return TrialState.FAIL, None
    return TrialState.COMPLETE, value


def tell(study: optuna.Study, trial: Trial, ret: JobReturn) -> TrialState:
    """Record the job's outcome, run directory, epochs and seconds in `trial`; returns the state.

    `study` is a fresh view of the storage (see ResumableSearch._reload); `trial` the handle it was asked
    with, whose attribute writes go straight to storage. A pruned trial's value is its last reported one.
    """
    state, value = job_outcome(ret)
    summary = _job_summary(ret)
    if summary is not None:
        for key in ("run_dir", "epochs", "seconds"):
            trial.set_user_attr(key, getattr(summary, key))
    study.tell(trial.number, value, state=state)
    return state


def _job_summary(ret: JobReturn) -> Summary | None:
    if ret.hydra_cfg is None:
        return None
    return RunDir(Path(ret.hydra_cfg.hydra.runtime.output_dir)).read_summary()


def write_results(study: optuna.Study, sweep_dir: Path, epochs_per_trial: int) -> dict[str, Any]:
    """optimization_results.yaml and optuna_trials.png in `sweep_dir`, over all trials of the study."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    results: dict[str, Any] = {
        "name": "optuna",
        "study_name": study.study_name,
        "best_params": None,
        "best_value": None,
    }
    if complete:
        best = study.best_trial
        results.update(
            best_params=best.params,
            best_value=best.value,
            best_trial=best.number,
            best_run_dir=best.user_attrs.get("run_dir"),
        )
        log.info("Best trial %d: val Dice %.4f with %s", best.number, best.value, best.params)
    results["trials"] = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState if s.is_finished()}
    results["compute"] = compute_saved(trials, epochs_per_trial)
    log.info("Pruning: %s", results["compute"])
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
    plot_search(trials, study.direction, sweep_dir / "optuna_trials.png")
    return results


def compute_saved(trials: list[optuna.trial.FrozenTrial], epochs_per_trial: int) -> dict[str, float]:
    """Epochs and seconds the COMPLETE and PRUNED trials trained, against training every one to the end."""
    ran = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.user_attrs.get("epochs")]
    epochs = sum(t.user_attrs["epochs"] for t in ran)
    seconds = sum(t.user_attrs.get("seconds", 0.0) for t in ran)
    full_seconds = sum(t.user_attrs.get("seconds", 0.0) / t.user_attrs["epochs"] * epochs_per_trial for t in ran)
    budget = epochs_per_trial * len(ran)
    return {
        "trials": len(ran),
        "epochs_trained": epochs,
        "epochs_without_pruning": budget,
        "epochs_saved_fraction": round(1 - epochs / budget, 4) if budget else 0.0,
        "seconds_trained": round(seconds, 1),
        "seconds_without_pruning_estimate": round(full_seconds, 1),
    }
