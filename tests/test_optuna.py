"""Optuna searches (`hparams_search=lr_optuna`, the seg_optuna sweeper) with sqlite storage: resume after a kill without
losing or repeating trials, a NaN trial that does not abort the search, and median-rule pruning."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from clitools import REPO, run_cli
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import LogUniformDistribution
from optuna.trial import TrialState, create_trial

from seg.sweep.pruning import TrialPruner
from seg.sweep.search import job_outcome
from seg.sweep.study import counted_trials, open_storage, requeue_interrupted

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
LR = "optimizer.lr"
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
LR_RANGE = LogUniformDistribution(1e-5, 1e-2)


def storage_url(out: Path) -> str:
    return f"sqlite:///{out}/optuna/lr_optuna.db"


def new_study(out: Path) -> optuna.Study:
    return optuna.create_study(study_name="lr_optuna", storage=open_storage(storage_url(out)), direction="maximize")


def load_study(out: Path) -> optuna.Study:
    """The study as stored now (a Study object caches its trials)."""
    return optuna.load_study(study_name="lr_optuna", storage=storage_url(out))


def search_args(out: Path, cli_paths: list[str], n_trials: int, *overrides: str) -> list[str]:
    """`seg.train -m hparams_search=lr_optuna` at smoke size, its outputs under `out`."""
    return [
        "seg.train", "-m", "hparams_search=lr_optuna", "debug=smoke", "data=synthetic", "logger=none",
        "trainer.epochs=2", f"hydra.sweeper.n_trials={n_trials}", f"paths.output_dir={out}", *cli_paths, *overrides,
    ]  # fmt: skip


def search(out: Path, cli_paths: list[str], n_trials: int, *overrides: str) -> list[Path]:
    """Run the lr search to its end; returns the sweep directories under `out` so far."""
    result = run_cli(*search_args(out, cli_paths, n_trials, *overrides), env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    return sorted((out / "multirun" / "lr_optuna").iterdir())


def kill_after_completed(out: Path, cli_paths: list[str], n_completed: int) -> None:
    """Start a long search and kill it (SIGKILL: no clean-up) once `n_completed` trials have completed."""
    env = {**os.environ, **ONE_THREAD, "WANDB_MODE": "offline"}
    args = search_args(out, cli_paths, 50)
    with subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as proc:  # fmt: skip
        deadline = time.monotonic() + 240
        # Watch the job folders, not the database: opening the study while the sweeper creates it races
        # its schema set-up. Jobs run one at a time and job n starts after trials 0..n-1 were told.
        while time.monotonic() < deadline and proc.poll() is None:
            if list((out / "multirun" / "lr_optuna").glob(f"*/{n_completed}")):
                break
            time.sleep(0.2)
        proc.kill()
    assert len(completed(out)) >= n_completed, "the search did not get going"


def completed(out: Path) -> list[optuna.trial.FrozenTrial]:
    try:
        return load_study(out).get_trials(states=(TrialState.COMPLETE,))
    except KeyError:  # the study is not created yet
        return []


@pytest.mark.slow
def test_search_resumes_after_a_kill_and_survives_a_nan_trial(tmp_path: Path, cli_paths: list[str]) -> None:
    kill_after_completed(tmp_path, cli_paths, 2)
    before = load_study(tmp_path).trials
    done, running = counted_trials(load_study(tmp_path)), [t for t in before if t.state == TrialState.RUNNING]
    # Continued with 2 more trials; the first new one gets lr 1e9 (in a widened range): its loss turns NaN,
    # the job fails, and the search goes on.
    load_study(tmp_path).enqueue_trial({LR: 1e9})
    *_, sweep = search(tmp_path, cli_paths, len(done) + 2, f"{LR}=tag(log,interval(1e-5,1e10))")

    trials = load_study(tmp_path).trials
    assert [t.number for t in trials] == list(range(len(before) + 2)), "no trial lost"
    assert all(t.state.is_finished() for t in trials)
    assert len(counted_trials(load_study(tmp_path))) == len(done) + 2
    nan_trial, *rerun = trials[len(before) :]  # queued trials first: the NaN one, then the killed one's
    assert nan_trial.params[LR] == 1e9 and nan_trial.state == TrialState.FAIL
    assert [t.params for t in running] == [t.params for t in rerun][: len(running)], "the killed trial reruns"
    finished = [t.params[LR] for t in trials if t.state == TrialState.COMPLETE]
    assert len(set(finished)) == len(finished), "no finished trial is repeated"
    assert all(t.intermediate_values.keys() == {1, 2} for t in done), "jobs report val Dice per epoch"
    assert json.loads((sweep / "0" / "summary.json").read_text())["status"] == "failed"
    assert (sweep / "optuna_trials.png").stat().st_size > 0 and (sweep / "summary.md").is_file()
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert results.trials.fail >= 1 and sum(results.trials.values()) == len(trials)
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert results.best_params[LR] == pytest.approx(best.params[LR]) and results.best_value == best.value


@pytest.mark.slow
def test_clearly_worse_trial_is_pruned(tmp_path: Path, cli_paths: list[str]) -> None:
    # A finished trial with val Dice 0.99 at every epoch: any smoke trial is below it after the warm-up.
    new_study(tmp_path).add_trial(
        create_trial(
            params={LR: 1e-3}, distributions={LR: LR_RANGE}, value=0.99, intermediate_values={1: 0.99, 2: 0.99, 3: 0.99}
        )
    )
    [sweep] = search(tmp_path, cli_paths, 2, "pruning.startup_trials=1", "pruning.warmup_epochs=1", "trainer.epochs=3")

    trial = load_study(tmp_path).trials[1]
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [1]
    assert trial.value == trial.intermediate_values[1], "a pruned trial keeps its last reported value"
    summary = json.loads((sweep / "0" / "summary.json").read_text())
    assert summary["status"] == "pruned" and summary["epochs"] == 1
    compute = OmegaConf.load(sweep / "optimization_results.yaml").compute
    assert compute.epochs_trained == 1 and compute.epochs_without_pruning == 3


def test_pruner_reports_to_its_trial_and_applies_the_median_rule(tmp_path: Path) -> None:
    study = new_study(tmp_path)
    for value in (0.5, 0.6, 0.7):  # median 0.6 at epochs 1-3
        study.add_trial(
            create_trial(
                params={LR: 1e-3},
                distributions={LR: LR_RANGE},
                value=value,
                intermediate_values={1: value, 2: value, 3: value},
            )
        )
    cfg = OmegaConf.create(
        {
            "storage": storage_url(tmp_path),
            "study_name": "lr_optuna",
            "trial": None,
            "startup_trials": 3,
            "warmup_epochs": 2,
            "min_trials": 1,
        }
    )
    assert TrialPruner.from_config(None) is None and TrialPruner.from_config(cfg) is None  # not a search trial
    good, bad = study.ask(), study.ask()
    good_pruner = TrialPruner.from_config(OmegaConf.merge(cfg, {"trial": good.number}))
    bad_pruner = TrialPruner.from_config(OmegaConf.merge(cfg, {"trial": bad.number}))

    assert not bad_pruner.report(1, 0.1), "no pruning during the warm-up"
    assert bad_pruner.report(2, 0.1), "below the median after the warm-up"
    assert not good_pruner.report(1, 0.65) and not good_pruner.report(2, 0.65)
    stored = {t.number: t.intermediate_values for t in load_study(tmp_path).trials}
    assert stored[bad.number] == {1: 0.1, 2: 0.1} and stored[good.number] == {1: 0.65, 2: 0.65}


def test_interrupted_trials_are_requeued_not_counted(tmp_path: Path) -> None:
    study = new_study(tmp_path)
    study.add_trial(create_trial(params={LR: 1e-3}, distributions={LR: LR_RANGE}, value=0.5))
    left_running = study.ask()
    left_running.suggest_float(LR, 1e-5, 1e-2, log=True)

    assert requeue_interrupted(study) == [left_running.number]
    assert [t.number for t in counted_trials(study)] == [0]
    assert study.trials[left_running.number].state == TrialState.FAIL
    rerun = study.ask()
    assert rerun.suggest_float(LR, 1e-5, 1e-2, log=True) == left_running.params[LR]


def job_return(tmp_path: Path, value: object, status: str | None, job_status: JobStatus) -> JobReturn:
    job_dir = tmp_path / "job"
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text("[]\n")
    if status:
        (job_dir / "summary.json").write_text(json.dumps({"status": status}))
    ret = JobReturn(hydra_cfg=OmegaConf.create({"hydra": {"runtime": {"output_dir": str(job_dir)}}}))
    ret.status, ret.return_value = job_status, value
    return ret


@pytest.mark.parametrize(
    "value,status,job_status,expected",
    [
        (0.8, "completed", JobStatus.COMPLETED, (TrialState.COMPLETE, 0.8)),
        (math.nan, "completed", JobStatus.COMPLETED, (TrialState.FAIL, None)),
        ("not a number", "completed", JobStatus.COMPLETED, (TrialState.FAIL, None)),
        (0.0, "failed", JobStatus.COMPLETED, (TrialState.FAIL, None)),
        (0.4, "pruned", JobStatus.COMPLETED, (TrialState.PRUNED, None)),
        (RuntimeError("boom"), None, JobStatus.FAILED, (TrialState.FAIL, None)),
    ],
)
def test_job_outcome_guards(tmp_path: Path, value, status, job_status, expected) -> None:
    assert job_outcome(job_return(tmp_path, value, status, job_status)) == expected
