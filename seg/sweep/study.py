"""The Optuna study of a search, as the sweeper and its trial jobs both open it.

A search keeps its study in a database (`hydra.sweeper.storage`, sqlite under outputs/ by default) so
that it survives interruption and so that trial jobs, in other processes, can report to it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

SQLITE_PREFIX = "sqlite:///"
# Seconds a write waits for the sqlite lock held by another process (parallel trial jobs).
SQLITE_TIMEOUT_S = 120
# Trial states that a finished trial can have; a search's budget counts these.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# User attribute marking a trial that was running when its search was interrupted.
INTERRUPTED = "interrupted"


def open_storage(url: str | None) -> optuna.storages.BaseStorage | None:
    """The storage behind `url`; sqlite gets its folder created and a lock timeout. None: in memory."""
    if url is None:
        return None
    engine_kwargs = {}
    if url.startswith(SQLITE_PREFIX):
        Path(url[len(SQLITE_PREFIX) :]).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that count against `n_trials`: finished ones, except those an interruption cut short."""
    return [t for t in study.get_trials(deepcopy=False, states=FINISHED) if not t.user_attrs.get(INTERRUPTED)]


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """Fail the trials a previous, interrupted search left running, and queue their parameters again.

    Assumes one search process per study at a time (the trials of a live search would be failed too).
    Returns the numbers of the trials that were requeued.
    """
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        study.tell(trial.number, state=TrialState.FAIL)
        with warnings.catch_warnings():  # enqueue_trial is "experimental" in optuna 2.x, and stable since
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.enqueue_trial(trial.params)
    return [t.number for t in stale]
