"""Optuna searches (`hparams_search=lr_optuna`, the seg_optuna sweeper) with sqlite storage: two worker processes on
one study with one SIGKILLed mid-trial, a study that refuses other settings, pruner choice, bad search spaces and
an aborted search refused in one line."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from clitools import run_cli, start_cli
from configs import compose_config
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import LogUniformDistribution
from optuna.trial import TrialState, create_trial

from seg.engine.fit import TrainState
from seg.errors import ConfigError
from seg.rundir import RunDir, Status, Summary
from seg.schema import PruningConfig
from seg.sweep.pruning import TrialPruner
from seg.sweep.space import search_space, shared_settings
from seg.sweep.storage import INTERRUPTED, SETTINGS, WORKER, counted_trials, fail_stale, open_storage
from seg.sweep.trial_table import SWEEP_DIR
from seg.sweep.trials import compute_saved, job_outcome, write_results

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
LR = "optimizer.lr"
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
LR_RANGE = LogUniformDistribution(1e-5, 1e-2)
# Heartbeats every second; a trial without one for 4 s belongs to a dead worker.
FAST_HEARTBEAT = ("hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=4")


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


def start_worker(out: Path, cli_paths: list[str], n_trials: int, *overrides: str, output: bool) -> subprocess.Popen:
    """A search process; `output`: its stdout and stderr are read (else discarded, so that no full pipe blocks it)."""
    env = {**os.environ, **ONE_THREAD, "WANDB_MODE": "offline"}
    args = search_args(out, cli_paths, n_trials, *overrides)
    return start_cli(*args, env=env, merge_stderr=True)


def wait_for(condition, what: str, procs: list[subprocess.Popen], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        assert all(p.poll() is None for p in procs), f"a worker ended while waiting for {what}"
        time.sleep(0.2)


def trials_of(out: Path, pid: int, *states: TrialState) -> list[optuna.trial.FrozenTrial]:
    """The trials that worker `pid` ran (in `states`)."""
    trials = load_study(out).get_trials(states=states or None)
    return [t for t in trials if t.user_attrs.get(WORKER, "").endswith(f":{pid}")]


def numbers(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    return {t.number for t in trials}


@pytest.mark.slow
def test_two_workers_share_a_study_and_a_killed_workers_trial_runs_again(tmp_path: Path, cli_paths: list[str]) -> None:
    new_study(tmp_path)  # created first: the workers' database set-up does not race this test's reads
    args = (tmp_path, cli_paths, 4, "trainer.epochs=3", "pruning.pruner=none", *FAST_HEARTBEAT)
    a = start_worker(*args, output=False)
    wait_for(lambda: trials_of(tmp_path, a.pid, TrialState.RUNNING), "worker A's first trial", [a])
    b = start_worker(*args, output=True)
    try:
        wait_for(lambda: trials_of(tmp_path, b.pid), "worker B's first trial", [a, b])
        # A is killed (no clean-up at all) in the middle of a trial that has reported an epoch.
        wait_for(lambda: [t for t in trials_of(tmp_path, a.pid, TrialState.RUNNING) if t.intermediate_values],
                 "a trial of worker A in the middle of its epochs", [a, b])  # fmt: skip
        a.kill()
        a.wait()
        killed = trials_of(tmp_path, a.pid, TrialState.RUNNING)
        err, _ = b.communicate(timeout=240)  # stdout and stderr together
    finally:
        b.kill()
    assert b.returncode == 0, err[-3000:]

    trials = load_study(tmp_path).trials
    assert all(t.state.is_finished() for t in trials), "nothing left running or queued"
    assert len(counted_trials(load_study(tmp_path))) == 4, "n_trials over both workers, not per worker"
    assert killed and {t.number for t in trials if t.state == TrialState.FAIL} == numbers(killed)
    assert all(trials[k.number].user_attrs.get(INTERRUPTED) for k in killed), "the killed trials do not count"
    reruns = [t for t in trials if t.number > max(k.number for k in killed) and t.state == TrialState.COMPLETE]
    assert all(any(r.params == k.params for r in reruns) for k in killed), "the killed trials' parameters ran again"
    assert all(t.state == TrialState.COMPLETE for t in trials_of(tmp_path, b.pid)), "B's trials were never failed"
    assert all(t.state == TrialState.COMPLETE for t in trials_of(tmp_path, a.pid) if t.number not in numbers(killed))
    assert "no heartbeat" in err, "B says why it reran A's trial"
    sweep = next(
        d for d in (tmp_path / "multirun" / "lr_optuna").iterdir() if (d / "optimization_results.yaml").is_file()
    )
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert sum(results.trials.values()) == len(trials) and results.compute.pruned == 0
    assert (sweep / "optuna_history.png").stat().st_size > 0 and (sweep / "optuna_intermediate_values.png").is_file()


@pytest.mark.slow
def test_a_study_refuses_a_search_of_other_settings(tmp_path: Path, cli_paths: list[str]) -> None:
    # The study of a search at 2 epochs (what the search below would record, but for trainer.epochs=5).
    cfg = compose_config("hparams_search=lr_optuna", "debug=smoke", "data=synthetic", "logger=none",
                         "trainer.epochs=5", "pruning=null", *cli_paths)  # fmt: skip
    study = new_study(tmp_path)
    study.set_user_attr(SETTINGS, shared_settings(cfg, [LR], "maximize"))

    result = run_cli(*search_args(tmp_path, cli_paths, 2), env=ONE_THREAD)
    assert result.returncode == 2 and not load_study(tmp_path).trials
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: study lr_optuna") and "(trainer.epochs=5 there, 2 here)" in line
    assert "hydra.sweeper.study_name=<new name>" in line and "Traceback" not in result.stdout


@pytest.mark.slow
def test_a_search_aborted_by_failed_trials_is_one_line(tmp_path: Path, cli_paths: list[str]) -> None:
    # lr 1e8: the loss turns NaN, the job fails, and with max_failure_rate 0 the search stops after it.
    result = run_cli(*search_args(tmp_path, cli_paths, 3, f"{LR}=tag(log,interval(1e8,1e9))",
                                  "hydra.sweeper.max_failure_rate=0"), env=ONE_THREAD)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: 1 trials failed, more than")
    assert "Traceback" not in result.stderr
    [trial] = load_study(tmp_path).trials
    assert trial.state == TrialState.FAIL
    [sweep] = (tmp_path / "multirun" / "lr_optuna").iterdir()
    assert json.loads((sweep / "0" / "summary.json").read_text())["status"] == "failed"
    assert OmegaConf.load(sweep / "optimization_results.yaml").trials.fail == 1


@pytest.mark.slow
def test_clearly_worse_trial_is_pruned_by_the_chosen_pruner(tmp_path: Path, cli_paths: list[str]) -> None:
    # Finished trials with val Dice 0.99 at every epoch, past the first rung: any smoke trial is below them there.
    study = new_study(tmp_path)
    for _ in range(3):
        study.add_trial(good_trial(3, system_attrs={"completed_rung_0": 0.99}))
    [sweep] = search(tmp_path, cli_paths, 4, "pruning.pruner=successive_halving", "trainer.epochs=3")

    trial = load_study(tmp_path).trials[3]
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [1]
    assert trial.value == trial.intermediate_values[1], "a pruned trial keeps its last reported value"
    summary = json.loads((sweep / "3" / "summary.json").read_text())
    assert summary["status"] == "pruned" and summary["epochs"] == 1
    compute = OmegaConf.load(sweep / "optimization_results.yaml").compute
    assert compute.epochs_trained == 1 and compute.epochs_without_pruning == 3 and compute.pruned == 1
    # the summary is the study's (written by the search, left alone by the sweep callback): the trials added
    # before this call first, without a folder, then this call's pruned one
    rows = [line.split(" | ") for line in (sweep / "summary.md").read_text().splitlines() if line.startswith("| ")]
    assert [r[0] for r in rows[1:]] == ["| 0", "| 1", "| 2", "| 3"] and rows[4][1:4] == [sweep.name, "3", "pruned"]


def good_trial(epochs: int, value: float = 0.99, **kwargs: object) -> optuna.trial.FrozenTrial:
    return create_trial(params={LR: 1e-3}, distributions={LR: LR_RANGE}, value=value,
                        intermediate_values={e: value for e in range(1, epochs + 1)}, **kwargs)  # fmt: skip


@pytest.mark.parametrize("pruner", ["none", "median", "successive_halving", "hyperband"])
def test_each_pruner_prunes_a_clearly_worse_trial(tmp_path: Path, pruner: str) -> None:
    epochs = 9  # hyperband: brackets with rungs at 1, 3 / 3 / none before the end
    study = new_study(tmp_path)
    for value in [0.8 + i / 100 for i in range(15)]:  # past every rung, as successive halving records it
        study.add_trial(good_trial(epochs, value, system_attrs={f"completed_rung_{k}": value for k in range(3)}))
    cfg = PruningConfig(storage=storage_url(tmp_path), study_name="lr_optuna", pruner=pruner, startup_trials=3,
                        warmup_epochs=1)  # fmt: skip
    assert TrialPruner.from_config(None, epochs) is None and TrialPruner.from_config(cfg, epochs) is None

    def run(value: float) -> int | None:
        """The epoch at which a trial with val Dice `value` at every epoch is pruned (None: it completes)."""
        hook = TrialPruner.from_config(PruningConfig(**{**vars(cfg), "trial": study.ask().number}), epochs)
        for epoch in range(1, epochs + 1):
            stop = hook.stop(TrainState(epoch=epoch), {"val/dice": value})
            if stop is not None:
                assert stop.status == Status.PRUNED and stop.reason.startswith(f"pruned: val/dice {value:.4f} is ")
                return epoch
        return None

    assert run(0.99) is None, "the best trial trains to the end"
    pruned_at = [run(0.1) for _ in range(10)]  # hyperband puts each trial in a bracket by a hash
    if pruner == "none":
        assert pruned_at == [None] * 10
    else:
        assert any(pruned_at) and all(e is None or e < epochs for e in pruned_at)
    assert load_study(tmp_path).trials[15].intermediate_values == {e: 0.99 for e in range(1, epochs + 1)}


@pytest.mark.parametrize(
    "argument,message",
    [
        (f"{LR}=tag(log,interval(1e-2,1e-5))", "the bounds are reversed"),
        (f"{LR}=interval(0.5,0.1)", "the bounds are reversed"),
        (f"{LR}=tag(log,interval(0,1e-2))", "a log range must lie above 0"),
        (f"{LR}=tag(log,interval(-1,1))", "a log range must lie above 0"),
    ],
)
def test_bad_search_space_is_one_line(argument: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        search_space([argument])
    assert str(e.value).startswith(f"invalid search space: {argument}: ") and "\n" not in str(e.value)


def test_search_space_splits_searched_and_fixed_keys() -> None:
    distributions, fixed = search_space(
        [f"{LR}=tag(log,interval(1e-5,1e-2))", "loss=choice(bce,dice)", "trainer.epochs=3"]
    )
    assert distributions[LR] == LR_RANGE and list(distributions["loss"].choices) == ["bce", "dice"]
    assert fixed == {"trainer.epochs": "3"}


def test_dead_workers_trials_are_failed_and_requeued_live_ones_kept(tmp_path: Path) -> None:
    storage = open_storage(storage_url(tmp_path), heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="lr_optuna", storage=storage, direction="maximize")
    study.add_trial(good_trial(2, 0.5))
    orphan, live = study.ask(), study.ask()  # orphan: no worker, no heartbeat (its worker died at once)
    for trial in (orphan, live):
        trial.suggest_float(LR, 1e-5, 1e-2, log=True)
    live.set_user_attr(WORKER, "host:1")
    storage.record_heartbeat(live._trial_id)

    assert fail_stale(study, grace_period=60) == [], "started 60 s ago at most: not stale yet"
    assert fail_stale(study, grace_period=0) == [orphan.number], "a worker with a fresh heartbeat keeps its trial"
    trials = load_study(tmp_path).trials
    assert trials[orphan.number].state == TrialState.FAIL and trials[orphan.number].user_attrs[INTERRUPTED]
    assert trials[live.number].state == TrialState.RUNNING
    assert [t.number for t in counted_trials(load_study(tmp_path))] == [0]
    rerun = study.ask()
    assert rerun.suggest_float(LR, 1e-5, 1e-2, log=True) == orphan.params[LR], "the orphan's parameters run again"


def test_compute_saved_counts_only_pruning() -> None:
    def trial(state: TrialState, epochs: int, seconds: float) -> optuna.trial.FrozenTrial:
        return create_trial(state=state, value=0.5, user_attrs={"epochs": epochs, "seconds": seconds})

    # an early-stopped complete trial (2 of 5 epochs), a pruned one (1 of 5), a full one
    compute = compute_saved([trial(TrialState.COMPLETE, 2, 4.0), trial(TrialState.PRUNED, 1, 2.0),
                             trial(TrialState.COMPLETE, 5, 10.0)], epochs_per_trial=5)  # fmt: skip
    assert compute["epochs_trained"] == 8 and compute["epochs_without_pruning"] == 12 and compute["pruned"] == 1
    assert compute["seconds_trained"] == 16.0 and compute["seconds_without_pruning_estimate"] == 24.0


def job_return(tmp_path: Path, value: object, status: str | None, job_status: JobStatus) -> JobReturn:
    job_dir = tmp_path / "job"
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text("[]\n")
    if status:
        RunDir(job_dir).write_summary(Summary(Status(status), str(job_dir)))
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


def test_the_summary_covers_every_trial_of_the_study_over_its_calls(tmp_path: Path) -> None:
    """Trials of two calls (sweep folders) of one search, and one added without a folder: summary.md lists all
    of them with their call and job, best val Dice first, the shared overrides once, lr to 3 significant digits."""
    first, second = tmp_path / "multirun" / "lr_optuna" / "2026-01-01_10-00-00", tmp_path / "multirun" / "lr_optuna" / "2026-01-02_10-00-00"  # noqa: E501

    def trial(sweep: Path | None, number: int, lr: float, state: TrialState, value: float | None,
              *extra: str, **attrs: object) -> optuna.trial.FrozenTrial:  # fmt: skip
        job = None if sweep is None else sweep / str(number)
        if job is not None:
            (job / ".hydra").mkdir(parents=True)
            overrides = ["debug=smoke", "trainer.epochs=3", f"{LR}={lr!r}", f"pruning.trial={number}", *extra]
            (job / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(overrides))
            if state in (TrialState.COMPLETE, TrialState.PRUNED):
                status = Status.COMPLETED if state == TrialState.COMPLETE else Status.PRUNED
                RunDir(job).write_summary(Summary(status, str(job), best_val_dice=value, epochs=3, seconds=9.87,
                                                  test={"dice": value - 0.01}))  # fmt: skip
                attrs["run_dir"] = str(job)
            attrs[SWEEP_DIR] = str(sweep)
        return create_trial(params={LR: lr}, distributions={LR: LR_RANGE}, value=value, state=state,
                            intermediate_values={1: value} if value is not None else {}, user_attrs=attrs)  # fmt: skip

    study = optuna.create_study(study_name="lr_optuna", direction="maximize")
    for t in [trial(first, 0, 1.2345678e-4, TrialState.COMPLETE, 0.70),
              trial(first, 1, 3e-3, TrialState.PRUNED, 0.40),
              trial(second, 2, 9.8765e-4, TrialState.COMPLETE, 0.80, "logger=none"),
              trial(second, 3, 1e-2, TrialState.FAIL, None, "logger=none"),
              trial(None, 4, 2e-5, TrialState.COMPLETE, 0.75),
              trial(second, 5, 5e-5, TrialState.FAIL, None, **{INTERRUPTED: True})]:  # fmt: skip
        study.add_trial(t)
    (tmp_path / "elsewhere.md").write_text("not the summary's")
    (second / "summary.md").symlink_to(tmp_path / "elsewhere.md")  # planted: replaced, never written through
    results = write_results(study, second, epochs_per_trial=3, pruner="median", storage=storage_url(tmp_path))
    assert (tmp_path / "elsewhere.md").read_text() == "not the summary's" and not (second / "summary.md").is_symlink()

    text = (second / "summary.md").read_text()
    header, *rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ")]
    assert header[:5] == ["| trial", "call", "job", "status", LR] and header[-1] == "other overrides |"
    assert [r[0] for r in rows] == ["| 2", "| 4", "| 0", "| 1", "| 3", "| 5"], "best val Dice first, the rest last"
    assert rows[0][1:7] == [second.name, "2", "completed", "0.000988", "0.8000", "0.7900"]
    assert rows[1][1:5] == ["", "", "completed", "2e-05"], "a trial without a folder (an older seg) is listed"
    assert rows[2][1:5] == [first.name, "0", "completed", "0.000123"] and rows[3][3] == "pruned"
    assert [rows[4][3], rows[5][3]] == ["failed", "interrupted"] and rows[4][2] == "3", "a job that wrote nothing"
    assert "Every trial: `debug=smoke trainer.epochs=3`" in text and "pruning.trial" not in text
    assert [r[-1] for r in rows] == ["logger=none |", " |", " |", " |", "logger=none |", " |"]
    assert "6 trials over 2 calls of the search (this one is 2026-01-02_10-00-00)" in text
    with (second / "summary.csv").open(newline="") as f:
        assert [float(r[LR]) for r in csv.DictReader(f)][:3] == [9.8765e-4, 2e-5, 1.2345678e-4], "exact in the CSV"
    assert results["calls"] == {str(first): [0, 1], str(second): [2, 3, 5]}
    assert OmegaConf.load(second / "optimization_results.yaml").calls[str(first)] == [0, 1]


def test_importances_are_drawn_and_a_failing_plot_is_left_out(tmp_path: Path, monkeypatch, caplog) -> None:
    from optuna.distributions import CategoricalDistribution

    from seg.sweep import plots

    study = optuna.create_study(direction="maximize")
    for n, lr in enumerate([1e-4, 3e-4, 1e-3, 3e-3, 5e-3]):
        params = {LR: lr, "loss": ["bce", "dice"][n % 2]}
        dists = {LR: LR_RANGE, "loss": CategoricalDistribution(["bce", "dice"])}
        study.add_trial(create_trial(params=params, distributions=dists, value=0.5 + lr * 50 + 0.01 * (n % 2)))
    monkeypatch.setattr(plots, "_slice", lambda study: 1 / 0)
    written = {p.name for p in plots.plot_study(study, tmp_path)}
    assert "optuna_importances.png" in written and "optuna_history.png" in written
    assert "optuna_slice.png" not in written and "optuna_slice.png left out: drawing it failed" in caplog.text


def test_a_search_writes_where_the_one_layout_says() -> None:
    from hydra import compose, initialize_config_dir

    from seg.config import CONF_DIR, register

    register()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", ["hparams_search=lr_optuna", "paths.output_dir=/o"], return_hydra_config=True)
    assert cfg.hydra.sweeper.storage == "sqlite:////o/optuna/lr_optuna.db"
    assert re.fullmatch(r"/o/multirun/lr_optuna/\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", cfg.hydra.sweep.dir)
