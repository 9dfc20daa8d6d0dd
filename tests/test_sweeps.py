"""Real multiruns through the CLI: one job directory and W&B run per job (named from its swept value), one W&B
group per sweep, and the sweep summary; the same with the joblib launcher running 2 jobs at once."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from clitools import run_cli, wandb_records

pytestmark = pytest.mark.slow

SMOKE = ["debug=smoke", "data=synthetic", "logger.log_images_every=0"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # 2 jobs x 2 threads on a small shared CPU crawl


def run_sweep(out: Path, cli_paths: list[str], *overrides: str) -> Path:
    """Run `seg.train -m` with `overrides`; returns its sweep directory."""
    result = run_cli(
        "seg.train",
        "-m",
        *SMOKE,
        "optimizer.lr=1e-3,3e-3",
        f"paths.output_dir={out}",
        *cli_paths,
        *overrides,
        env=ONE_THREAD,
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    [sweep_dir] = (out / "multirun" / "default").iterdir()
    return sweep_dir


def wandb_group_and_name(job_dir: Path) -> tuple[str, str]:
    [wandb_file] = job_dir.glob("wandb/offline-run-*/run-*.wandb")
    [run] = [r["run"] for r in wandb_records(wandb_file) if r.get("type") == "run"][:1]
    return run["run_group"], run["display_name"]


def check_sweep(sweep_dir: Path) -> list[str]:
    """Both jobs ran in their own directories and the summary lists them, and their W&B runs are named from the
    swept value; returns their W&B groups."""
    with (sweep_dir / "summary.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["job"] for r in rows] == ["0", "1"]
    assert ["optimizer.lr=0.001" in r["overrides"] for r in rows] == [True, False]
    for row in rows:
        job_dir = sweep_dir / row["job"]
        summary = json.loads((job_dir / "summary.json").read_text())
        assert row["status"] == summary["status"] == "completed"
        assert float(row["best_val_dice"]) == pytest.approx(summary["best_val_dice"], abs=1e-4)
        assert float(row["test_dice"]) == pytest.approx(summary["test"]["dice"], abs=1e-4)
        assert int(row["epochs"]) == summary["epochs"] == 1
    assert "| job | overrides | status |" in (sweep_dir / "summary.md").read_text()
    groups, names = zip(*(wandb_group_and_name(sweep_dir / r["job"]) for r in rows))
    assert list(names) == ["lr0.001", "lr0.003"], "a sweep job's W&B name is what it varies"
    return list(groups)


def test_multirun_basic_and_joblib(tmp_path: Path, cli_paths: list[str]) -> None:
    basic = run_sweep(tmp_path / "basic", cli_paths)
    parallel = run_sweep(tmp_path / "joblib", cli_paths, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")

    basic_groups, parallel_groups = check_sweep(basic), check_sweep(parallel)
    assert basic_groups == [f"default-{basic.name}"] * 2, "the jobs of a sweep share one W&B group"
    assert parallel_groups == [f"default-{parallel.name}"] * 2
    assert basic.name != parallel.name, "two sweeps, two groups"
