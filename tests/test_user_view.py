"""What a user sees (issue 24), on one tiny real study run once through the CLI (debug=smoke, 2 seeds, 4 runs):
its W&B runs read back from the offline files, its progress lines, a debug run that says it is one, the report's
paper outputs; and the CLI answers to a typo and to `seg.evaluate logger=none`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from clitools import run_cli, wandb_records

STUDY = ["-m", "experiment=ablation_scheduler", "debug=smoke", "data=synthetic", "study.seeds=[0,1]",
         "ablation.strata.model=[unet]", "~profile"]  # fmt: skip
"""4 runs; without the quick profile the basic launcher runs them in this process (no joblib workers to start)."""
NAMES = {"unet-cosine-s0", "unet-cosine-s1", "unet-onecycle-s0", "unet-onecycle-s1"}


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory, cli_paths: list[str]) -> tuple[Path, str]:
    """(study dir, stdout + stderr) of the tiny study, run under its own SEG_ROOT."""
    root = tmp_path_factory.mktemp("seg-root")
    result = run_cli("seg.train", *STUDY, *cli_paths, env={"SEG_ROOT": str(root)}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    return root / "outputs" / "debug" / "studies" / "ablation_scheduler", result.stdout + result.stderr


def run_record(parent: Path) -> dict:
    [wandb_file] = parent.glob("wandb/offline-run-*/run-*.wandb")
    return next(r["run"] for r in wandb_records(wandb_file) if r.get("type") == "run")


@pytest.mark.slow
def test_study_runs_are_named_by_arm_and_seed_in_one_group(tiny_study: tuple[Path, str]) -> None:
    study_dir, _ = tiny_study
    runs = [run_record(d) for d in sorted((study_dir / "runs").iterdir())]
    assert {r["display_name"] for r in runs} == NAMES
    assert {r["run_group"] for r in runs} == {"ablation_scheduler"}, "one group per study"
    for r in runs:
        arm = r["display_name"].split("-")[1]
        assert r["tags"] == ["ablation_scheduler", f"scheduler={arm}", "model=unet", "debug"]
    report = run_record(study_dir)
    assert (report["display_name"], report["run_group"], report["job_type"]) == ("report", "ablation_scheduler",
                                                                                  "report")  # fmt: skip


@pytest.mark.slow
def test_study_prints_a_line_per_finished_run_with_an_eta(tiny_study: tuple[Path, str]) -> None:
    _, output = tiny_study
    lines = re.findall(r"\[(\d)/4\] (\S+) test dice 0\.\d\d \(\d+:\d\d\)( - ETA \d+:\d\d)?", output)
    assert [int(k) for k, _, _ in lines] == [1, 2, 3, 4] and {name for _, name, _ in lines} == NAMES
    assert all(eta for k, _, eta in lines if k != "4") and not lines[-1][2], "an ETA until the last run"


@pytest.mark.slow
def test_a_debug_study_says_it_is_one(tiny_study: tuple[Path, str]) -> None:
    study_dir, _ = tiny_study
    assert study_dir.parts[-3:] == ("debug", "studies", "ablation_scheduler"), "never next to the real study"
    fixed = next(line for line in (study_dir / "report.md").read_text().splitlines() if "Fixed:" in line)
    assert "trainer.limit_train_batches=2" in fixed and "data.limit=16" in fixed


@pytest.mark.slow
def test_the_report_writes_paper_tables_and_figures(tiny_study: tuple[Path, str]) -> None:
    study_dir, _ = tiny_study
    tex = sorted((study_dir / "tables").glob("*.tex"))
    assert len(tex) >= 3 and all((t.with_suffix(".csv")).is_file() for t in tex), "every report table, both forms"
    assert all(r"\toprule" in t.read_text() and r"\bottomrule" in t.read_text() for t in tex)
    assert any("test Dice" in t.read_text() and r"$\pm$" in t.read_text() for t in tex)
    assert (study_dir / "qualitative.png").stat().st_size > 0 and (study_dir / "ablation_scheduler_seeds.png").is_file()


@pytest.mark.slow
def test_evaluate_without_wandb_says_where_each_setting_comes_from(tiny_study: tuple[Path, str], tmp_path: Path,
                                                                   cli_paths: list[str]) -> None:  # fmt: skip
    study_dir, _ = tiny_study
    best = next((study_dir / "runs").glob("*/checkpoints/best.pt"))
    result = run_cli("seg.evaluate", f"ckpt={best}", "logger=none", "split=val", f"paths.output_dir={tmp_path}",
                     *cli_paths)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "split val (command line)" in output and "data.image_size 32 (checkpoint)" in output
    assert "logger none (command line)" in output and "data.limit=16 comes from the checkpoint" in output
    [eval_dir] = (tmp_path / "eval").iterdir()  # a checkpoint outside paths.output_dir
    assert not (eval_dir / "wandb").exists() and "data.limit=16" in (eval_dir / "results.md").read_text()


@pytest.mark.slow
def test_a_typo_gets_the_did_you_mean_line_and_no_plus_advice(tmp_path: Path) -> None:
    result = run_cli("seg.train", "trainer.epoch=3", env={"SEG_ROOT": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown config key trainer.epoch; did you mean trainer.epochs?")
    assert "+" not in result.stderr and not (tmp_path / "outputs").exists()


def test_a_smoke_search_never_shares_the_real_search_storage() -> None:
    from configs import CONF
    from hydra import compose, initialize_config_dir

    def storage(*overrides: str) -> str:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=["hparams_search=lr_optuna", *overrides], return_hydra_config=True)
        return str(cfg.hydra.sweeper.storage)

    real, smoke = storage(), storage("debug=smoke")
    assert real.endswith("/outputs/optuna/lr_optuna.db") and smoke.endswith("/outputs/debug/optuna/lr_optuna.db")


def _search(two_params: bool):
    """An Optuna study as a search leaves it: completed trials and trials pruned after 1 or 2 epochs."""
    import warnings

    import optuna
    from optuna.distributions import CategoricalDistribution, LogUniformDistribution

    study = optuna.create_study(direction="maximize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for n, (lr, epochs) in enumerate([(1e-4, 3), (3e-4, 3), (1e-3, 3), (3e-3, 1), (2e-5, 2), (5e-3, 3)]):
            params, dists = {"optimizer.lr": lr}, {"optimizer.lr": LogUniformDistribution(1e-5, 1e-2)}
            if two_params:
                params["loss"], dists["loss"] = ["bce", "dice"][n % 2], CategoricalDistribution(["bce", "dice"])
            values = {e: 0.5 + 0.05 * e + 0.01 * n for e in range(1, epochs + 1)}
            state = optuna.trial.TrialState.COMPLETE if epochs == 3 else optuna.trial.TrialState.PRUNED
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, intermediate_values=values,
                                                      value=values[epochs] if epochs == 3 else None, state=state))
    return study


def test_search_plots_show_pruned_trials_on_fitted_and_log_axes(tmp_path: Path) -> None:
    from seg.sweep.plots import intermediate_values, plot_study

    written = {p.name for p in plot_study(_search(two_params=True), tmp_path)}
    assert written >= {"optuna_history.png", "optuna_slice.png", "optuna_intermediate_values.png",
                       "optuna_parallel_coordinate.png"}  # fmt: skip
    ax = intermediate_values(_search(two_params=False))
    crosses = [line for line in ax.lines if line.get_marker() == "x"]
    assert sorted(tuple(line.get_xdata()) for line in crosses) == [(1,), (2,)], "a cross where each pruned one stopped"
    assert 0.4 < ax.get_ylim()[0] < 0.55, "the y range is fitted to the data, not from 0"



def test_sweep_summary_says_shared_overrides_once_with_short_numbers_best_first(tmp_path: Path) -> None:
    from seg.rundir import Status, Summary
    from seg.sweep.results import JobResult, summary_markdown

    def job(n: int, lr: str, dice: float, status: Status = Status.COMPLETED) -> JobResult:
        return JobResult(tmp_path / str(n), ["debug=smoke", f"optimizer.lr={lr}"],
                         Summary(status, str(tmp_path / str(n)), best_val_dice=dice))  # fmt: skip

    text = summary_markdown(tmp_path, [job(0, "0.00012345678901234", 0.5), job(1, "0.003", 0.7),
                                       job(2, "0.01", 0.0, Status.FAILED)])  # fmt: skip
    rows = [line for line in text.splitlines() if line.startswith("| ") and "job" not in line]
    assert "Every job: `debug=smoke`" in text and all("debug=smoke" not in r for r in rows)
    assert [r.split(" | ")[1] for r in rows] == ["optimizer.lr=0.003", "optimizer.lr=0.000123", "optimizer.lr=0.01"]


def test_the_nan_advice_suggests_full_precision_only_to_a_run_below_it() -> None:
    from seg.errors import NonFiniteLossError

    assert "trainer.precision=32" in str(NonFiniteLossError(epoch=2, batch=1))
    assert "trainer.precision=32" not in str(NonFiniteLossError(epoch=2, batch=1, full_precision=True))


def test_schema_nodes_are_no_options() -> None:
    from configs import compose_raw

    from seg.errors import ConfigError

    with pytest.raises(ConfigError, match="model=base_unet: base_\\* is the schema"):
        compose_raw("model=base_unet")
    assert compose_raw("model=unet").model.name == "unet"
    with pytest.raises(ConfigError, match="cannot set pruning.pruner: pruning is null .*hparams_search=lr_optuna"):
        compose_raw("pruning.pruner=none")  # was Hydra's AssertionError traceback


def test_progress_lines_name_each_finished_run_with_its_dice_and_an_eta(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from seg.rundir import RunDir, Status, Summary
    from seg.study.progress import RunProgress

    runs = [RunDir(tmp_path / name) for name in ("a", "b", "c")]
    for run in runs:
        run.path.mkdir()
    progress = RunProgress(lambda: runs, 3, bar=False)
    runs[1].config.write_text("logger:\n  run_name: unet-basic-s1\n")
    runs[1].write_summary(Summary(Status.COMPLETED, str(runs[1].path), seconds=65.0, test={"dice": 0.8712}))
    runs[2].write_summary(Summary(Status.RUNNING, str(runs[2].path)))
    with caplog.at_level(logging.INFO, logger="seg.study"):
        progress.poll()
        runs[2].write_summary(Summary(Status.FAILED, str(runs[2].path), error="boom"))
        progress.poll()
    lines = [r.getMessage() for r in caplog.records]
    assert re.fullmatch(r"\[1/3\] unet-basic-s1 test dice 0\.87 \(1:05\) - ETA 0:00", lines[0])
    assert re.fullmatch(r"\[2/3\] c failed \(0:00\) - ETA 0:00", lines[1])
