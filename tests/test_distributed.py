"""DistributedDataParallel on CPU (gloo) with 2 processes under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import REPO, read_csv_columns, run_cli

from seg.rundir import load_checkpoint

pytestmark = pytest.mark.slow


def torchrun(module: str, *args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=<nproc> -m <module> <args>` with W&B offline."""
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
         "-m", module, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


# 13 val images over 2 ranks with batch 4: uneven shards and a last partial batch (32 px: the checkpoint's size).
ODD_VAL = ["data.limit=13", "data.batch_size=4", "split=val"]


def test_ddp_evaluation_equals_one_process(cli_paths: list[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    trained = run_cli(
        "seg.train", "debug=smoke", "data=synthetic", "logger=none", f"hydra.run.dir={run_dir}", *cli_paths
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    ckpt = run_dir / "checkpoints" / "best.pt"

    single = run_cli("seg.evaluate", f"ckpt={ckpt}", *ODD_VAL, f"hydra.run.dir={tmp_path / 'single'}", *cli_paths)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = torchrun("seg.evaluate", f"ckpt={ckpt}", *ODD_VAL, "strategy=ddp", f"hydra.run.dir={tmp_path / 'ddp'}",
                   *cli_paths)  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]

    one = json.loads((tmp_path / "single" / "results.json").read_text())
    two = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert one["dice"]["count"] == two["dice"]["count"] == 13
    assert two["per_image"] == pytest.approx(one["per_image"], abs=1e-6)
    for key in ("dice_pooled", "iou_pooled", "loss"):
        assert two[key] == pytest.approx(one[key], rel=1e-5), key
    assert two["dice"]["mean"] == pytest.approx(one["dice"]["mean"], rel=1e-6)


DDP_TRAIN = [
    "trainer.strategy=ddp",
    "data=synthetic",
    "data.image_size=48",
    "model.base_channels=8",
    "data.batch_size=16",
    "optimizer.lr=3e-3",
    "scheduler=none",
    "logger=none",
    "data.num_workers=0",
]


def test_ddp_training_learns_and_resumes(cli_paths: list[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "ddp-run"
    first = torchrun("seg.train", *DDP_TRAIN, "trainer.epochs=3", f"hydra.run.dir={run_dir}", *cli_paths)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("Run directory:") == 1, "only rank 0 reports"
    dice = read_csv_columns(run_dir / "metrics.csv")["val/dice"]
    assert len(dice) == 3 and dice[-1] > dice[0] + 0.05, dice
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.pt", "last.pt"]

    resumed = torchrun("seg.train", *DDP_TRAIN, "trainer.epochs=4", f"resume={run_dir}", *cli_paths)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_csv_columns(run_dir / "metrics.csv")["epoch"] == [1.0, 2.0, 3.0, 4.0]
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt").epoch == 4
    assert read_csv_columns(run_dir / "metrics.csv")["val/dice"][:3] == dice
