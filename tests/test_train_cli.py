"""The real `python -m seg.train` in a subprocess: run directory, W&B read back, determinism, resume."""

from __future__ import annotations

import csv
import json
import signal
import time
from pathlib import Path

import pytest
from clitools import read_csv_columns, run_cli, start_cli, wandb_history

from seg.rundir import load_checkpoint

pytestmark = pytest.mark.slow

FAST = ["debug=smoke", "data=synthetic", "logger=none"]


def test_smoke_run_writes_the_run_directory_and_wandb_matches_metrics(
    cli_paths: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "outputs"
    result = run_cli(
        "seg.train",
        "debug=smoke",
        "data=synthetic",
        "trainer.epochs=2",
        f"paths.output_dir={out}",
        *cli_paths,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = Path(result.stdout.split("Run directory: ")[1].splitlines()[0])
    assert run_dir.parent.parent == out / "runs"
    assert "Best val Dice: " in result.stdout
    for name in (
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "metrics.csv",
        "curves.png",
        "config.yaml",
    ):
        assert (run_dir / name).is_file(), name
    assert "${" not in (run_dir / "config.yaml").read_text(), "config.yaml must be resolved"
    columns = read_csv_columns(run_dir / "metrics.csv")
    assert list(columns) == ["epoch", "train/loss", "train/dice", "val/loss", "val/dice", "lr", "seconds"]
    assert columns["epoch"] == [1.0, 2.0]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["best_val_dice"] == max(columns["val/dice"])
    assert 0.0 <= summary["test"]["dice"] <= 1.0

    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    history = [h for h in wandb_history(wandb_file) if "val/dice" in h]
    assert [h["epoch"] for h in history] == [1, 2]
    assert [h["val/dice"] for h in history] == pytest.approx(columns["val/dice"], rel=1e-9)
    assert [h["lr"] for h in history] == pytest.approx(columns["lr"], rel=1e-9)
    assert any("val/examples.count" in h for h in wandb_history(wandb_file)), "no image panel logged"


def _columns_without_time(run_dir: Path) -> dict[str, list[float]]:
    columns = read_csv_columns(run_dir / "metrics.csv")
    columns.pop("seconds")
    return columns


DETERMINISTIC = [
    *FAST,
    "trainer.deterministic=true",
    "trainer.epochs=3",
    "trainer.limit_train_batches=null",  # all 4 batches of the smoke split (debug=smoke caps it at 2)
    "data.num_workers=2",
    "scheduler=onecycle",
]


def test_deterministic_runs_are_identical_and_resume_after_sigkill_matches(
    cli_paths: list[str], tmp_path: Path
) -> None:
    first = tmp_path / "a"
    second = tmp_path / "b"
    for run_dir in (first, second):
        result = run_cli("seg.train", *DETERMINISTIC, f"hydra.run.dir={run_dir}", *cli_paths)
        assert result.returncode == 0, result.stderr[-3000:]
    reference = _columns_without_time(first)
    assert reference == _columns_without_time(second)

    killed = tmp_path / "killed"
    proc = start_cli("seg.train", *DETERMINISTIC, f"hydra.run.dir={killed}", *cli_paths)
    last = killed / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 240
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    completed = load_checkpoint(last).epoch
    assert completed < 3, "the run finished before it could be killed"

    resumed = run_cli("seg.train", f"resume={killed}", *cli_paths)  # the stored config: no overrides needed
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Run directory: {killed}" in resumed.stdout
    assert _columns_without_time(killed) == reference  # resumed after SIGKILL == uninterrupted


def test_evaluate_and_predict_from_the_cli(cli_paths: list[str], tmp_path: Path, real_root: Path) -> None:
    out = tmp_path / "outputs"
    run_dir = out / "run"
    result = run_cli("seg.train", *FAST, "trainer.epochs=1", f"hydra.run.dir={run_dir}", f"paths.output_dir={out}",
                     *cli_paths)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    best = run_dir / "checkpoints" / "best.pt"

    evaluated = run_cli("seg.evaluate", f"ckpt={best}", "num_worst=2", "num_random=1", f"paths.output_dir={out}",
                        *cli_paths)  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    [eval_dir] = (run_dir / "eval").iterdir()
    results = json.loads((eval_dir / "results.json").read_text())
    assert set(results["dice"]) == {"mean", "median", "std", "min", "max", "count"}
    assert results["dice"]["count"] == len(results["per_image"]) == results["images"] > 0
    assert results["image_size"] == 32 and results["threshold"] == 0.5 and results["split"] == "test"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert results["dice"]["mean"] == pytest.approx(summary["test"]["dice"], abs=1e-12)  # one evaluation function
    assert results["dice_pooled"] == pytest.approx(summary["test"]["dice_pooled"], abs=1e-12)
    assert (eval_dir / "per_image.csv").read_text() == (run_dir / "test_per_image.csv").read_text()
    assert "32 px" in (eval_dir / "results.md").read_text()
    assert (eval_dir / "examples.png").stat().st_size > 0

    inputs = tmp_path / "inputs"
    (inputs / "more").mkdir(parents=True)
    for name in ("Abyssinian_1.jpg", "Abyssinian_34.jpg", "Abyssinian_5.jpg"):  # JPEG, GIF, RGBA PNG
        (inputs / name).write_bytes((real_root / "images" / name).read_bytes())
    (inputs / "more" / "Abyssinian_1.jpg").write_bytes((real_root / "images" / "Abyssinian_10.jpg").read_bytes())
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (inputs / "empty.png").write_bytes(b"")
    output = tmp_path / "predictions"
    predicted = run_cli("seg.predict", f"ckpt={best}", f"input={inputs}", f"output={output}")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert "Skipped 2 file(s)" in predicted.stdout
    from PIL import Image

    for name in ("Abyssinian_1", "Abyssinian_34", "Abyssinian_5", "more/Abyssinian_1"):
        source = real_root / "images" / f"{'Abyssinian_10' if 'more' in name else name}.jpg"
        with Image.open(source) as image, Image.open(output / f"{name}_mask.png") as mask:
            assert mask.size == image.size
            assert set(mask.getdata()) <= {0, 255}
        assert (output / f"{name}_overlay.png").is_file()
    with (output / "manifest.csv").open(newline="") as f:
        manifest = {Path(r["input"]).relative_to(inputs).as_posix(): r for r in csv.DictReader(f)}
    assert len(manifest) == 6 and manifest["more/Abyssinian_1.jpg"]["mask"] == "more/Abyssinian_1_mask.png"
    assert manifest["empty.png"]["skipped"] and not manifest["empty.png"]["mask"]
