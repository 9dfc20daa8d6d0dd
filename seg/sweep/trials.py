"""What a finished trial job means for the study, and what a search reports at its end.

- `job_outcome`/`tell`: a job whose summary.json says pruned is PRUNED; one that raised, wrote status failed (e.g.
  NaN loss) or returned a non-finite value is FAIL; otherwise COMPLETE with its best val Dice.
- `write_results`: optimization_results.yaml (best parameters, trials by state and by call, compute saved by
  pruning), summary.md/csv (seg/sweep/trial_table.py) and Optuna's plots in this call's sweep directory, over all
  trials of the study (every call so far).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial, TrialState

from seg.files import atomic_write_text
from seg.rundir import RunDir, Status, Summary
from seg.sweep.plots import plot_study
from seg.sweep.trial_table import TrialRow, write_trial_table

log = logging.getLogger(__name__)


def job_outcome(ret: JobReturn) -> tuple[TrialState, float | None]:
    """The trial state and value of a finished job: COMPLETE with a finite value, PRUNED, or FAIL."""
    if ret.status != JobStatus.COMPLETED:
        log.warning("Trial job raised %r: the trial fails, the search goes on", ret._return_value)
        return TrialState.FAIL, None
    summary = _job_summary(ret)
    status = Status.MISSING if summary is None else summary.status
    if status == Status.PRUNED:
        return TrialState.PRUNED, None
    try:
        value = float(ret.return_value)
    except (TypeError, ValueError):
        value = math.nan
    if status != Status.COMPLETED or not math.isfinite(value):
        log.warning(
            "Trial job ended with status %s, value %s: the trial fails, the search goes on", status, ret.return_value
        )
        return TrialState.FAIL, None
    return TrialState.COMPLETE, value


def tell(study: optuna.Study, number: int, ret: JobReturn) -> TrialState | None:
    """Record the job's outcome, run directory, epochs and seconds in trial `number` of `study` (a fresh view of
    the storage: the job wrote its per-epoch values from elsewhere); returns the state, or None when another
    worker had already failed the trial (its parameters run again as a new trial)."""
    state, value = job_outcome(ret)
    summary = _job_summary(ret)
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    try:
        if summary is not None:
            for key in ("run_dir", "epochs", "seconds"):
                study._storage.set_trial_user_attr(trial_id, key, getattr(summary, key))
        study.tell(number, value, state=state)
    except RuntimeError as e:  # "Trial#N has already finished and can not be updated"
        log.warning("Trial %d was failed by another worker meanwhile (%s): its result is not counted", number, e)
        return None
    return state


def _job_summary(ret: JobReturn) -> Summary | None:
    if ret.hydra_cfg is None:
        return None
    return RunDir(Path(ret.hydra_cfg.hydra.runtime.output_dir)).read_summary()


def write_results(
    study: optuna.Study, sweep_dir: Path, epochs_per_trial: int, pruner: str, storage: str | None = None
) -> dict[str, Any]:
    """optimization_results.yaml, summary.md/csv and Optuna's plots in `sweep_dir` (this call's folder), over all
    trials of the study; `storage`: its URL, for summary.md."""
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
        log.info("Best trial %d: val Dice %.4f with %s", best.number, best.value,
                 " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items()))
    results["trials"] = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState if s.is_finished()}
    results["calls"] = calls(study)
    results["pruner"] = pruner
    results["compute"] = compute_saved(trials, epochs_per_trial)
    log.info("%s", pruning_sentence(results["compute"], pruner))
    atomic_write_text(sweep_dir / "optimization_results.yaml", OmegaConf.to_yaml(OmegaConf.create(results)))
    _, md_path = write_trial_table(study, sweep_dir, storage)
    log.info("Study summary (%d trials, every call so far): %s", len(trials), md_path)
    plot_study(study, sweep_dir)
    return results


def calls(study: optuna.Study) -> dict[str, list[int]]:
    """{sweep folder of a call: the numbers of the trials it ran}, for the trials whose folder is known."""
    found: dict[str, list[int]] = {}
    for trial in study.get_trials(deepcopy=False):
        job_dir = TrialRow(trial, None).job_dir
        if job_dir is not None:
            found.setdefault(str(job_dir.parent), []).append(trial.number)
    return found


def compute_saved(trials: list[FrozenTrial], epochs_per_trial: int) -> dict[str, float]:
    """Epochs and seconds the COMPLETE and PRUNED trials trained, against the same trials without pruning: a
    pruned trial would have trained `epochs_per_trial` epochs, a complete one what it trained (an early stop is
    not pruning). Seconds without pruning scale a pruned trial's seconds to the full epochs."""
    ran = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.user_attrs.get("epochs")]
    pruned = [t for t in ran if t.state == TrialState.PRUNED]
    epochs = sum(t.user_attrs["epochs"] for t in ran)
    seconds = sum(t.user_attrs.get("seconds", 0.0) for t in ran)
    budget = epochs + sum(epochs_per_trial - t.user_attrs["epochs"] for t in pruned)
    full_seconds = seconds + sum(
        t.user_attrs.get("seconds", 0.0) * (epochs_per_trial / t.user_attrs["epochs"] - 1) for t in pruned
    )
    return {
        "trials": len(ran),
        "pruned": len(pruned),
        "epochs_trained": epochs,
        "epochs_without_pruning": budget,
        "epochs_saved_fraction": round(1 - epochs / budget, 4) if budget else 0.0,
        "seconds_trained": round(seconds, 1),
        "seconds_without_pruning_estimate": round(full_seconds, 1),
    }


def pruning_sentence(compute: dict[str, float], pruner: str) -> str:
    """compute_saved's figures as one sentence for the log."""
    return (
        f"Pruning ({pruner}): {compute['pruned']} of {compute['trials']} trials pruned; they trained "
        f"{compute['epochs_trained']} of {compute['epochs_without_pruning']} epochs "
        f"({compute['epochs_saved_fraction']:.0%} saved), {compute['seconds_trained']:.0f} s of an estimated "
        f"{compute['seconds_without_pruning_estimate']:.0f} s"
    )
