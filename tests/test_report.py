"""A tiny ablation through the CLI (`experiment=ablation_architecture`, 2 seeds, smoke sizes) and its report."""

from __future__ import annotations

from pathlib import Path

import pytest
from clitools import run_cli

from seg.report import main as report_main

pytestmark = pytest.mark.slow


def test_tiny_ablation_and_report(tmp_path: Path, cli_paths: list[str]) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(
        "seg.train",
        "-m",
        "experiment=ablation_architecture",
        "debug=smoke",
        "trainer.epochs=2",
        "logger=none",
        "hydra.launcher.n_jobs=1",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        f"paths.output_dir={tmp_path}",
        *cli_paths,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert len(list(sweep.glob("*/summary.json"))) == 4, "2 models x 2 seeds"

    out = tmp_path / "report"
    report_main([str(sweep), "--out", str(out)])
    text = (out / "report.md").read_text()
    assert "## ablation_architecture: model" in text
    assert "| model | seeds | best val Dice | test Dice | train Dice (last epoch) | training time (s) |" in text
    assert "| resnet34_unet − unet | 2 |" in text, "the difference against the baseline, over 2 seeds"
    assert " ± " in text and "Reports' finding: The reports disagree" in text
    assert "![ablation_architecture](ablation_architecture.png)" in text
    assert (out / "ablation_architecture.png").stat().st_size > 10_000
