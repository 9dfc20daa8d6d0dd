"""W&B as a team reads it, checked on the offline run files (`wandb leet inspect --json` and the run's files/):
run names and groups, test metrics and the per-image table, the checkpoint artifact, `seg.evaluate` as an eval
run of the training run's group, the smoke project, sweep job names, and the report run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from clitools import run_cli, wandb_records
from configs import compose_config

from seg.config import to_yaml
from seg.study.tables import markdown_tables
from seg.study.wandb_runs import log_report
from seg.wandb_names import sweep_group, sweep_job_name, tracking_names


def offline_run(parent: Path) -> Path:
    """The only offline W&B run directory under `parent`/wandb."""
    [run] = parent.glob("wandb/offline-run-*")
    return run


def read_run(parent: Path) -> tuple[dict, dict, list[dict]]:
    """(run record, final summary, all records) of the offline W&B run under `parent`."""
    [wandb_file] = offline_run(parent).glob("run-*.wandb")
    records = wandb_records(wandb_file)
    summary: dict = {}
    for r in records:
        if r.get("type") == "summary":
            summary.update(r["summary"].get("update", {}))
    return next(r["run"] for r in records if r.get("type") == "run"), summary, records


def logged_table(parent: Path, key: str) -> list[list]:
    """The rows of table `key` the run logged (files/media/table/<key>_*.table.json)."""
    [path] = (offline_run(parent) / "files" / "media" / "table").glob(f"{key}_*.table.json")
    table = json.loads(path.read_text())
    assert table["columns"] == ["image", "dice", "tp", "fp", "fn"]
    return table["data"]


def csv_rows(path: Path) -> list[list]:
    with path.open(newline="") as f:
        return [[r["image"], float(r["dice"]), int(r["tp"]), int(r["fp"]), int(r["fn"])] for r in csv.DictReader(f)]


def assert_same_rows(logged: list[list], expected: list[list]) -> None:
    assert [r[0] for r in logged] == [r[0] for r in expected] and len(expected) > 0
    assert [r[1] for r in logged] == pytest.approx([r[1] for r in expected], abs=1e-6)
    assert [r[2:] for r in logged] == [r[2:] for r in expected]


@pytest.mark.slow
def test_training_and_evaluation_runs_read_back(cli_paths: list[str], tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    train = run_cli("seg.train", "debug=smoke", "data=synthetic", "name=pets", "logger.log_checkpoints=true",
                    f"paths.output_dir={out}", *cli_paths)  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    run_dir = Path(train.stdout.split("Run directory: ")[1].splitlines()[0])

    run, summary, records = read_run(run_dir)
    assert (run["display_name"], run["run_group"], run["job_type"]) == ("pets", "pets", "train")
    assert run["project"] == "seg-debug", "debug=smoke runs go to their own project"
    test = json.loads((run_dir / "summary.json").read_text())["test"]
    assert summary["test/dice"] == pytest.approx(test["dice"]) and summary["test/count"] == test["count"]
    assert_same_rows(logged_table(run_dir, "test/per_image"), csv_rows(run_dir / "test_per_image.csv"))
    [model] = [r["artifact"] for r in records if r.get("type") == "artifact" and r["artifact"]["type"] == "model"]
    assert model["name"] == f"model-{run['run_id']}" and "best" in model["aliases"]
    logger = yaml.safe_load((run_dir / "config.yaml").read_text())["logger"]
    assert (logger["group"], logger["run_name"]) == ("pets", "pets"), "config.yaml keeps what the run is tracked as"

    evaluate = run_cli("seg.evaluate", f"ckpt={run_dir}/checkpoints/best.pt", f"paths.output_dir={out}", *cli_paths)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    [eval_dir] = (run_dir / "eval").iterdir()
    run, summary, records = read_run(eval_dir)
    assert (run["display_name"], run["run_group"], run["job_type"]) == ("pets-eval-test", "pets", "eval")
    assert run["project"] == "seg-debug"
    results = json.loads((eval_dir / "results.json").read_text())
    assert summary["test/dice"] == pytest.approx(results["dice"]["mean"]) and summary["test/count"] == results["images"]
    assert_same_rows(logged_table(eval_dir, "test/per_image"), csv_rows(eval_dir / "per_image.csv"))
    images = [f["path"] for r in records if r.get("type") == "files" for f in r["files"]["files"]]
    assert any(p.startswith("media/images/test/examples_") and p.endswith(".png") for p in images)


def hydra_job(mode: str, overrides: list[str], sweep_dir: Path, params: dict | None = None, num: int = 0):
    """What `HydraConfig.get()` holds for a job: its run mode, overrides, sweeper and sweep folder."""
    from omegaconf import OmegaConf

    return OmegaConf.create({"mode": mode, "overrides": {"task": overrides}, "job": {"num": num},
                             "sweeper": {"params": params}, "sweep": {"dir": str(sweep_dir)}})  # fmt: skip


def test_run_names_say_what_a_sweep_job_is(tmp_path: Path) -> None:
    swept = {"model", "scheduler", "seed"}
    assert sweep_job_name(["data=synthetic", "model=unet", "scheduler=onecycle", "seed=1"], swept, None) == (
        "unet-onecycle-s1")
    assert sweep_job_name(["trainer.epochs=5", "optimizer.lr=0.000123456"], {"optimizer.lr"}, 3) == "t3-lr0.000123"
    assert sweep_job_name(["model.encoder=efficientnet-b0", "trainer.deterministic=true", "threshold=0.97"],
                          {"model.encoder", "trainer.deterministic", "threshold"}, None) == (
        "efficientnet-b0-deterministic-true-threshold0.97")  # fmt: skip
    assert sweep_group("lr_optuna", "2026-01-01", "lr_optuna") == "lr_optuna", "one group per stored study"
    assert sweep_group("default", "2026-01-01", None) == "default-2026-01-01", "one group per sweep"

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(
        {"hydra": {"overrides": {"task": ["debug=smoke", "optimizer.lr=1e-3,3e-3", "threshold=0.4"]}}}
    ))  # fmt: skip
    cfg = compose_config("debug=smoke", "optimizer.lr=0.003", "threshold=0.4")
    named = tracking_names(cfg, hydra_job("MULTIRUN", ["debug=smoke", "optimizer.lr=0.003", "threshold=0.4"], sweep))
    lg = named.logger
    assert (lg.run_name, lg.group, lg.tags) == ("lr0.003", "default-sweep", ["debug"]), "only the swept keys"
    assert tracking_names(cfg, hydra_job("MULTIRUN", ["seed=1"], tmp_path / "other", num=2)).logger.run_name == (
        "default-2")
    single = tracking_names(compose_config("name=demo"), hydra_job("RUN", ["name=demo"], tmp_path))
    assert (single.logger.run_name, single.logger.group, single.logger.tags) == ("demo", "demo", [])
    given = ["logger.group=mine", "logger.run_name=this", "seed=1"]
    kept = tracking_names(compose_config(*given), hydra_job("MULTIRUN", given, tmp_path, {"seed": "0,1"})).logger
    assert (kept.group, kept.run_name) == ("mine", "this"), "what the command line sets is kept"


def test_smoke_runs_have_their_own_project() -> None:
    assert compose_config().logger.project == "seg"
    assert compose_config("debug=smoke").logger.project == "seg-debug"


REPORT = """# Ablation report

## Verdicts

| arm | baseline | difference | verdict |
|---|---|---|---|
| onecycle | cosine | 0.012 | no difference |
| strong | basic | -0.030 | difference |

Text between tables.

## Seeds

| seed | dice |
|---|---|
| 0 | 0.91 |
"""


def test_markdown_tables_are_read_with_their_headings() -> None:
    [verdicts, seeds] = markdown_tables(REPORT)
    assert verdicts[0] == "1_verdicts" and verdicts[1] == ["arm", "baseline", "difference", "verdict"]
    assert verdicts[2][1] == ["strong", "basic", -0.03, "difference"]
    assert seeds == ("2_seeds", ["seed", "dice"], [[0.0, 0.91]])
    [(_, _, compute)] = markdown_tables("## Compute\n| | count |\n|---|---|\n| runs | 24 |\n| wall time | |\n")
    assert compute == [["runs", "24.0"], ["wall time", ""]]  # a W&B table column holds one type


def test_report_is_a_run_of_the_study_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose_config("debug=smoke", "logger.group=ablation_scheduler-2026-01-01_00-00-00")
    (tmp_path / "sweep" / "0").mkdir(parents=True)
    (tmp_path / "sweep" / "0" / "config.yaml").write_text(to_yaml(cfg))
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text(REPORT)
    from seg.viz import plot_curves

    rows = [{"epoch": 1, "train/loss": 0.5, "train/dice": 0.5, "val/loss": 0.6, "val/dice": 0.4, "lr": 1e-3}]
    plot_curves(rows, out / "curves.png", "study")
    (out / "seeds.csv").write_text("seed,dice\n0,0.91\n1,0.92\n")

    [run_id] = log_report(out / "report.md", [out / "curves.png", out / "seeds.csv"], [tmp_path / "sweep"])
    run, _, records = read_run(out)
    assert run["run_id"] == run_id
    assert (run["display_name"], run["job_type"], run["project"]) == ("report", "report", "seg-debug")
    assert run["run_group"] == "ablation_scheduler-2026-01-01_00-00-00"
    files = {f["path"].rsplit("_", 2)[0] for r in records if r.get("type") == "files" for f in r["files"]["files"]}
    assert {"media/table/report/1_verdicts", "media/table/report/2_seeds", "media/table/report/seeds",
            "media/images/report/curves", "media/html/report/text"} <= files  # fmt: skip
    [artifact] = [r["artifact"] for r in records if r.get("type") == "artifact" and r["artifact"]["type"] == "report"]
    assert {c["path"] for c in artifact["manifest"]["contents"]} == {"report.md", "curves.png", "seeds.csv"}


def test_a_study_run_without_wandb_gets_no_report_run(tmp_path: Path) -> None:
    (tmp_path / "sweep" / "0").mkdir(parents=True)
    (tmp_path / "sweep" / "0" / "config.yaml").write_text(to_yaml(compose_config("logger=none")))
    (tmp_path / "report.md").write_text(REPORT)
    assert log_report(tmp_path / "report.md", [], [tmp_path / "sweep"]) == []
    assert not (tmp_path / "wandb").exists()


def test_make_wandb_sync_finds_every_offline_run_under_outputs(tmp_path: Path) -> None:
    """Runs, sweep and study jobs, evaluations and reports: `make wandb-sync` hands all of them to `wandb sync`."""
    import subprocess

    from clitools import REPO

    places = ["runs/demo/t", "runs/demo/t/eval/test_t", "multirun/default/t/0", "multirun/lr_optuna/t/12",
              "ablations/ablation_scheduler/t/3", "ablations"]  # fmt: skip
    expected = []
    for i, place in enumerate(places):
        run = tmp_path / "outputs" / place / "wandb" / f"offline-run-20260101_000000-id{i}"
        (run / "files").mkdir(parents=True)
        (run / f"run-id{i}.wandb").touch()
        expected.append(str(run / f"run-id{i}.wandb"))
    listed = subprocess.run(["make", "-s", "-o", "install", "wandb-sync", f"SEG_ROOT={tmp_path}", "ARGS=--dry-run"],
                            cwd=REPO, capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    lines = (listed.stdout + listed.stderr).splitlines()  # wandb prints its list to stderr
    assert sorted(line.split()[-1] for line in lines if line.endswith(".wandb")) == sorted(expected)
