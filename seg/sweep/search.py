"""The search loop of `hydra/sweeper=seg_optuna`, replacing hydra-optuna-sweeper's `sweep()`.

What it changes, and why:
- Before the study opens: the search space is checked (reversed bounds, a log range through 0) and a trial's
  config is composed and checked, each refused in one line. The study records the settings every trial shares
  (its result-affecting keys minus the searched ones); a search with other settings is refused, naming the keys.
- Workers: every process running this search on the same storage and study name is a worker. A worker keeps up
  to `n_jobs` trials running (one job per trial, launched as soon as a slot is free: no batch barrier) and asks
  for one only while the study has fewer than `n_trials` trials finished or running; it sends a heartbeat for
  each of its trials until the trial is told. A RUNNING trial whose heartbeat is older than `grace_period`
  belongs to a dead worker: it is failed, marked `interrupted` (not counted) and its parameters queued again
  (seg/sweep/storage.py). A worker with nothing left to ask waits for the other workers' trials, so that a dead
  worker's trial runs again, and ends when the study has `n_trials` counted trials. A worker stopped by Ctrl-C
  or SIGTERM fails and requeues its own running trials at once.
- Failures: a trial whose job raised, wrote status failed (e.g. NaN loss) or returned a non-finite value is told
  FAIL, and the search stops when more than `max_failure_rate * n_trials` of this worker's trials failed.
- Pruning: each job gets `pruning.trial=<number>`, reports val Dice per epoch to its trial and stops when the
  study's pruner says so (seg/sweep/pruning.py); a job whose summary.json says pruned is told PRUNED.
- Results: optimization_results.yaml, summary.md/csv and Optuna's plots in the sweep directory, over every trial of
  the study, whichever call or worker ran it (seg/sweep/trials.py). Job directories are named by trial number, so
  that workers sharing a sweep directory never share a job's; each trial records its call's sweep directory.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from pathlib import Path
from typing import Any

import optuna
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl
from optuna.trial import Trial, TrialState

from seg.errors import ConfigError, SegError
from seg.sweep.pruning import make_pruner
from seg.sweep.space import search_space, shared_settings, trial_config
from seg.sweep.storage import (
    STORAGE_TIMEOUT_S,
    WORKER,
    check_settings,
    counted_trials,
    fail_stale,
    interrupt,
    open_storage,
    quiet_optuna_logging,
    study_lock,
    worker_id,
)
from seg.sweep.trial_table import SWEEP_DIR
from seg.sweep.trials import tell, write_results

log = logging.getLogger(__name__)


class SearchAborted(SegError):
    """Too many trials of a search failed."""


class ResumableSearch(OptunaSweeperImpl):
    """hydra-optuna-sweeper's implementation with seg's `sweep()` (see the module docstring)."""

    def __init__(self, heartbeat_interval: int, grace_period: int, storage_timeout: float = STORAGE_TIMEOUT_S,
                 **kwargs: Any) -> None:  # fmt: skip
        """`heartbeat_interval`, `grace_period`, `storage_timeout`: seconds (conf/hydra/sweeper/seg_optuna.yaml);
        `kwargs`: the plugin's keys."""
        super().__init__(**kwargs)
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.storage_timeout = storage_timeout

    def sweep(self, arguments: list[str]) -> None:
        if self.heartbeat_interval < 1 or self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"invalid config: hydra.sweeper.heartbeat_interval={self.heartbeat_interval}, grace_period="
                f"{self.grace_period}; allowed: an interval >= 1 s and a longer grace period (e.g. 20 and 120)"
            )
        self._process_searchspace_config()
        if isinstance(self.sampler, functools.partial):  # the plugin's grid sampler comes as a partial
            raise ConfigError(
                "invalid config: hydra.sweeper.sampler=grid; allowed: tpe, random, cmaes (seg_optuna); "
                "for a grid use the basic sweeper"
            )
        self.distributions, self.fixed = search_space(self._parse_sweeper_params_config() + arguments)
        trial_cfg = trial_config(self.hydra_context.config_loader, self.config, self.distributions, self.fixed)
        directions = self._get_directions()
        if len(directions) != 1:
            raise ConfigError("invalid config: hydra.sweeper.direction; allowed: one direction (seg_optuna)")
        self.epochs = trial_cfg.trainer.epochs
        self.pruner_name = "none" if trial_cfg.pruning is None else trial_cfg.pruning.pruner
        self.pruner = make_pruner(trial_cfg.pruning, self.epochs)
        quiet_optuna_logging()
        self.rdb = open_storage(self.storage, self.heartbeat_interval, self.grace_period, self.storage_timeout)
        self.overrides: dict[int, tuple[str, ...]] = {}
        study = optuna.create_study(
            study_name=self.study_name, storage=self.rdb, sampler=self.sampler, pruner=self.pruner,
            direction=directions[0], load_if_exists=True,
        )  # fmt: skip
        self.in_memory = study if self.rdb is None else None
        where = f"{study.study_name} ({self.storage or 'in memory'})"
        check_settings(study, shared_settings(trial_cfg, list(self.distributions), directions[0]), where)
        done = len(counted_trials(study))
        log.info("Study %s: %d of %d trials done; worker %s starts", where, done, self.n_trials, worker_id())
        try:
            self._work()
        finally:
            write_results(self._load(), Path(self.sweep_dir), self.epochs, self.pruner_name, self.storage)

    def _work(self) -> None:
        """Keep up to `slots` trials running until the study has n_trials counted ones (module docstring)."""
        # Hydra's basic launcher runs a job in this process (and its signal handlers need the main thread): one
        # slot, run in place. Other launchers run jobs elsewhere: one thread per slot waits for its job.
        threads = type(self.launcher).__name__ != "BasicLauncher"
        slots = self.n_jobs if threads else 1
        if self.n_jobs > 1 and not threads:
            log.warning(
                "n_jobs=%d needs a parallel launcher (hydra/launcher=joblib or slurm): 1 at a time", self.n_jobs
            )
        outcomes: queue.Queue[tuple[int, Any]] = queue.Queue()
        mine: dict[int, Trial] = {}
        heartbeats = Heartbeats(self.rdb, self.heartbeat_interval)
        failures, waiting_logged = 0, False
        try:
            while True:
                aborting = failures > self.max_failure_rate * self.n_trials
                while not aborting and len(mine) < slots and (trial := self._ask(heartbeats)) is not None:
                    mine[trial.number] = trial
                    if threads:
                        threading.Thread(target=self._run, args=(trial, outcomes), daemon=True).start()
                    else:
                        self._run(trial, outcomes)
                if not mine:
                    if aborting or len(counted_trials(self._load())) >= self.n_trials:
                        break
                    if not waiting_logged:
                        log.info("Waiting for the trials other workers run (a dead worker's run again here)")
                        waiting_logged = True
                try:
                    number, outcome = outcomes.get(timeout=self.heartbeat_interval)
                except queue.Empty:
                    continue
                if isinstance(outcome, BaseException):  # Ctrl-C, SIGTERM, or a crash of the launcher
                    raise outcome
                heartbeats.discard(mine.pop(number)._trial_id)
                failures += outcome == TrialState.FAIL
        finally:
            heartbeats.stop()
            if mine:
                stopped = interrupt(self._load(), list(mine))
                log.warning("Worker stopped: its trials %s fail and their parameters run again", stopped)
        if aborting:
            raise SearchAborted(
                f"{failures} trials failed, more than hydra.sweeper.max_failure_rate={self.max_failure_rate} of "
                f"n_trials={self.n_trials}; see the jobs' summary.json and logs in {self.sweep_dir}"
            )

    def _ask(self, heartbeats: Heartbeats) -> Trial | None:
        """A trial for this worker (a queued one first), or None when the study has n_trials finished or running.
        Under the study lock: dead workers' trials are failed and requeued first."""
        with study_lock(self.storage):
            study = self._load()
            stale = fail_stale(study, self.grace_period)
            if stale:
                log.warning("Trials %s had no heartbeat for %d s (dead worker): their parameters run again",
                            stale, self.grace_period)  # fmt: skip
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if len(counted_trials(study)) + len(running) >= self.n_trials:
                return None
            study.sampler = self._seeded_sampler(len(study.get_trials(deepcopy=False)))
            trial = study.ask()
            if self.rdb is not None:
                self.rdb.record_heartbeat(trial._trial_id)  # before WORKER: see study.fail_stale
            heartbeats.add(trial._trial_id)
            trial.set_user_attr(WORKER, worker_id())
            trial.set_user_attr(SWEEP_DIR, str(Path(self.sweep_dir).resolve()))
        self.overrides[trial.number] = self._configure_trials([trial], self.distributions, self.fixed)[0]
        return trial

    def _run(self, trial: Trial, outcomes: queue.Queue) -> None:
        """Launch trial's job (its directory: the trial number) and tell the study; puts (number, state or the
        exception that stopped it) into `outcomes`."""
        try:
            job = (*self.overrides.pop(trial.number), *self._trial_overrides(trial))
            [ret] = self.launcher.launch([job], initial_job_idx=trial.number)
            outcomes.put((trial.number, tell(self._load(), trial.number, ret)))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, which re-raises it
            outcomes.put((trial.number, e))

    def _load(self) -> optuna.Study:
        """The study read afresh from storage (a Study caches the trials it asked for, but trial jobs write their
        per-epoch values into them from elsewhere). An in-memory study (storage null) is the one object."""
        if self.in_memory is not None:
            return self.in_memory
        return optuna.load_study(study_name=self.study_name, storage=self.rdb, sampler=self.sampler, pruner=self.pruner)

    def _seeded_sampler(self, trial_number: int) -> optuna.samplers.BaseSampler:
        """The sampler for the trial about to be numbered `trial_number`, seeded with seed + that number: a rerun
        or a second worker does not draw the parameters of earlier trials again (one seed would)."""
        sampler_cfg = self.config.hydra.sweeper.sampler
        if sampler_cfg.get("seed") is None:
            return self.sampler
        return instantiate(sampler_cfg, seed=sampler_cfg.seed + trial_number)

    def _trial_overrides(self, trial: Trial) -> tuple[str, ...]:
        """Tell the job its trial number, so that its pruner reports to that trial."""
        return (f"pruning.trial={trial.number}",) if self.config.get("pruning") is not None else ()


class Heartbeats:
    """A daemon thread that records a heartbeat, every `interval` seconds, for each trial this worker runs."""

    def __init__(self, storage: optuna.storages.RDBStorage | None, interval: int):
        self.storage, self.interval = storage, interval
        self.trial_ids: set[int] = set()
        self.lock, self.stopped = threading.Lock(), threading.Event()
        self.thread = threading.Thread(target=self._beat, name="seg-heartbeats", daemon=True)
        if storage is not None:
            self.thread.start()

    def add(self, trial_id: int) -> None:
        with self.lock:
            self.trial_ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        with self.lock:
            self.trial_ids.discard(trial_id)

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()

    def _beat(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.lock:
                trial_ids = list(self.trial_ids)
            for trial_id in trial_ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception as e:  # noqa: BLE001 - a busy database must not stop the heartbeats
                    log.warning("Heartbeat of trial id %d not recorded: %s", trial_id, e)
