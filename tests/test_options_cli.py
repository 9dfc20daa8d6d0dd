"""Every model, loss, optimizer and scheduler option runs from the CLI (one multirun process per grid)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clitools import read_csv_columns, run_cli

from seg.sweep.results import load_sweep

pytestmark = pytest.mark.slow

QUIET = ["debug=smoke", "data=synthetic", "logger=none", "trainer.test_after_fit=false"]


@pytest.mark.parametrize(
    "grid,jobs",
    [
        (["loss=bce,dice,bce_dice,tversky,bce_tversky,focal"], 6),
        (["model=unet,resnet34_unet", "trainer.precision=bf16", "trainer.grad_clip=1.0"], 2),
        (["optimizer=adamw,adam,sgd", "scheduler=none,cosine,onecycle,plateau", "trainer.epochs=2"], 12),
    ],
    ids=["losses", "models-bf16-clip", "optimizers-x-schedulers"],
)  # fmt: skip  # every value once; optimizers x schedulers crossed (OneCycle cycles SGD's momentum, Adam's beta1)
def test_every_option_trains(grid: list[str], jobs: int, cli_paths: list[str], tmp_path: Path) -> None:
    result = run_cli("seg.train", "-m", *QUIET, *grid, f"hydra.sweep.dir={tmp_path}", *cli_paths, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = {" ".join(job.overrides): job.status for job in load_sweep(tmp_path)}
    assert len(statuses) == jobs
    assert set(statuses.values()) == {"completed"}, statuses


def test_early_stopping_on_val_dice(cli_paths: list[str], tmp_path: Path) -> None:
    # a tiny lr: val Dice soon stops improving (BatchNorm statistics still move, so not at once)
    result = run_cli(
        "seg.train", *QUIET, "trainer.epochs=8", "trainer.early_stop_patience=2", "optimizer.lr=1e-12",
        "scheduler=none", f"hydra.run.dir={tmp_path}", *cli_paths,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    dice = read_csv_columns(tmp_path / "metrics.csv")["val/dice"]
    assert summary["epochs"] == len(dice) == min(8, summary["best_epoch"] + 2)
    assert dice.index(max(dice)) + 1 == summary["best_epoch"]
    assert ("early stop" in result.stdout + result.stderr) == (summary["epochs"] < 8)


def test_smoke_on_the_real_sample(real_root: Path, tmp_path: Path) -> None:
    result = run_cli(
        "seg.train", "debug=smoke", "data=oxford_pet", f"data.root={real_root}", "logger=none",
        f"hydra.run.dir={tmp_path}", f"paths.data_dir={tmp_path / 'data'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and 0 <= summary["best_val_dice"] <= 1
