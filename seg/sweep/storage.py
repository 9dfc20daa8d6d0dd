"""The Optuna study of a search, as its workers and their trial jobs open it.

A search keeps its study in a database (`hydra.sweeper.storage`, sqlite under outputs/ by default) so that it
survives interruption, so that trial jobs in other processes can report to it, and so that several search
processes (workers) can share it. A worker records a heartbeat for each trial it runs; a RUNNING trial whose
heartbeat is older than the grace period belongs to a worker that died: any worker fails it, marks it
`interrupted` (it does not count against n_trials) and queues its parameters again.

A storage that cannot be used (a file that is not a database, a database locked by another process for longer than
the timeout, a server that cannot be reached) is one line within that timeout (`hydra.sweeper.storage_timeout`,
STORAGE_TIMEOUT_S by default), never a traceback after minutes.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import logging
import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from seg.errors import ConfigError, SegError

log = logging.getLogger(__name__)

SQLITE_PREFIX = "sqlite:///"
# Seconds a write waits for the sqlite lock held by another process (parallel workers and trial jobs), or a
# connection to a database server waits for it; then the search stops with one line.
STORAGE_TIMEOUT_S = 30.0
# Trial states that a finished trial can have; a search's budget counts these.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# User attribute marking a trial that was running when its worker stopped (it runs again as a new trial).
INTERRUPTED = "interrupted"
# User attribute naming the worker (host:pid) that runs a trial.
WORKER = "worker"
# Study user attributes: the settings every trial of the study shares, and their hash.
SETTINGS, SETTINGS_HASH = "settings", "settings_hash"


def worker_id() -> str:
    """This process as a search worker: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


class StorageError(SegError):
    """The search's Optuna storage cannot be used: not a database, locked too long, or unreachable."""


def open_storage(
    url: str | None, heartbeat_interval: int | None = None, grace_period: int | None = None,
    timeout: float = STORAGE_TIMEOUT_S,
) -> optuna.storages.RDBStorage | None:  # fmt: skip
    """The storage behind `url` (None: in memory); sqlite gets its folder created and a lock timeout, a server a
    connection timeout (`timeout` seconds). StorageError (one line) when it cannot be used."""
    if url is None:
        return None
    if url.startswith(SQLITE_PREFIX):
        try:
            Path(url[len(SQLITE_PREFIX) :]).parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"Optuna storage {url}: its folder cannot be made ({e}); give another "
                               "hydra.sweeper.storage") from e  # fmt: skip
        connect_args: dict[str, Any] = {"timeout": timeout}
    else:
        connect_args = {"connect_timeout": max(1, round(timeout))}  # PostgreSQL and MySQL drivers
    with storage_errors(url, timeout):
        return optuna.storages.RDBStorage(
            url, engine_kwargs={"connect_args": connect_args}, heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
        )  # fmt: skip


@contextmanager
def storage_errors(url: str | None, timeout: float = STORAGE_TIMEOUT_S) -> Iterator[None]:
    """Turn a database error from the storage at `url` into a StorageError that says what to do."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as e:
        text = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        if "not a database" in text or "malformed" in text:
            what = "is not an Optuna database; give another hydra.sweeper.storage (or move the file aside)"
        elif "locked" in text:
            what = (f"stayed locked by another process for {timeout:g} s (hydra.sweeper.storage_timeout); "
                    "wait for it to finish, or raise the timeout")  # fmt: skip
        else:
            what = "cannot be opened or reached; check the path or server, or give another hydra.sweeper.storage"
        raise StorageError(f"Optuna storage {url} {what} ({type(e).__name__}: {text})") from e


@contextmanager
def study_lock(url: str | None) -> Iterator[None]:
    """Held by a worker while it fails stale trials, counts the study's trials and asks for one, so that two
    workers can neither both take the last of n_trials nor both pop one queued trial. A file lock next to an
    sqlite database; with a server database none (two workers asking at the same instant may then run one
    trial more than n_trials)."""
    if url is None or not url.startswith(SQLITE_PREFIX):
        yield
        return
    with open(url[len(SQLITE_PREFIX) :] + ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def quiet_optuna_logging() -> None:
    """Optuna's messages through the process's own logging (Hydra's format and log file), without the colour
    codes of Optuna's default handler, which it writes even off a terminal."""
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that count against `n_trials`: finished ones, except those an interruption cut short."""
    return [t for t in study.get_trials(deepcopy=False, states=FINISHED) if not t.user_attrs.get(INTERRUPTED)]


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue the parameters of `trial` (failed as interrupted) to run again as a new trial."""
    with warnings.catch_warnings():  # enqueue_trial is "experimental" in optuna 2.x, and stable since
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.enqueue_trial(trial.params)


def interrupt(study: optuna.Study, numbers: list[int]) -> list[int]:
    """Fail and requeue the RUNNING trials `numbers` (this worker's own, when it stops); returns those it did."""
    done = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.number in numbers and _fail_interrupted(study, trial._trial_id):
            requeue(study, trial)
            done.append(trial.number)
    return done


def fail_stale(study: optuna.Study, grace_period: int) -> list[int]:
    """Fail and requeue the RUNNING trials of dead workers; returns their numbers.

    Stale: a heartbeat older than `grace_period` seconds (Optuna's RDB heartbeat), or no worker recorded and
    started more than `grace_period` ago (a worker killed between asking and its first heartbeat, or a study
    of an older seg). optuna.storages.fail_stale_trials is not used: in 2.10 it raises when another worker
    fails the same trial first, and the trials it had failed by then would never be requeued.
    """
    storage = study._storage
    rdb = getattr(storage, "_backend", storage)  # optuna wraps an RDBStorage in a cache
    stale = set(rdb._get_stale_trial_ids(study._study_id)) if storage.is_heartbeat_enabled() else set()
    now = datetime.datetime.now()
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    stale |= {
        t._trial_id
        for t in running
        if WORKER not in t.user_attrs and (now - t.datetime_start).total_seconds() > grace_period
    }
    done = []
    for trial in running:
        if trial._trial_id in stale and _fail_interrupted(study, trial._trial_id):
            requeue(study, trial)
            done.append(trial.number)
    return done


def _fail_interrupted(study: optuna.Study, trial_id: int) -> bool:
    """Set a RUNNING trial FAIL and `interrupted` in one transaction; False when another worker finished it
    first (then it is not ours to requeue)."""
    storage = study._storage
    rdb = getattr(storage, "_backend", storage)
    try:
        if isinstance(rdb, optuna.storages.RDBStorage):
            now = datetime.datetime.now()
            return rdb._update_trial(
                trial_id, state=TrialState.FAIL, user_attrs={INTERRUPTED: True}, datetime_complete=now
            )
        storage.set_trial_user_attr(trial_id, INTERRUPTED, True)  # in memory: one process, no other worker
        return storage.set_trial_state(trial_id, TrialState.FAIL)
    except RuntimeError:  # "Cannot change attributes of finished trial."
        return False


def plain(items: dict[str, Any]) -> dict[str, Any]:
    """`items` as JSON values (what a study user attribute holds), so that stored and new compare equal."""
    return json.loads(json.dumps(items, default=str, sort_keys=True))


def check_settings(study: optuna.Study, settings: dict[str, Any], where: str) -> None:
    """Record the settings every trial of `study` shares, or refuse (ConfigError) a search whose settings differ
    from those recorded. `where`: the study's name and storage, for the message."""
    settings = plain(settings)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    stored = study.user_attrs.get(SETTINGS)
    if stored is None:
        study.set_user_attr(SETTINGS, settings)
        study.set_user_attr(SETTINGS_HASH, digest)
        stored = optuna.load_study(study_name=study.study_name, storage=study._storage).user_attrs[SETTINGS]
    if stored == settings:
        return
    keys = sorted(k for k in stored.keys() | settings.keys() if stored.get(k, "<unset>") != settings.get(k, "<unset>"))
    diffs = "; ".join(f"{k}={stored.get(k, '<unset>')} there, {settings.get(k, '<unset>')} here" for k in keys)
    raise ConfigError(
        f"study {where} was run with other settings ({diffs}): its trials would not be comparable with this "
        f"search's; start a new study with hydra.sweeper.study_name=<new name> (or another hydra.sweeper.storage), "
        f"or run with the study's settings"
    )
