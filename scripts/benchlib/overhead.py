"""What one sweep job costs besides its training: process start, imports, config, data, W&B, shutdown.

A job is `python -m seg.train` on a small synthetic dataset (cached after the untimed first job) with a
4-channel UNet at 32 px and one batch of train and val: its compute is milliseconds, so the job's wall
time is the overhead. (`trainer.limit_train_batches` must be >= 1, so the suite cannot run zero batches.)
The seconds of fit's epoch loop (summary.json) are reported apart: besides the two tiny batches they
hold once-per-process costs of the first step (kernel set-up), the curves.png plot and the checkpoints.
The stages are timed as separate processes, alternating within each round: the interpreter alone,
`import seg.train`, the job with `logger=none` and the job with W&B offline; differences between
them are the cost of each stage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchlib.common import REPO, Stat
from seg.rundir import RunDir

TINY_JOB = [
    "data=synthetic", "data.synthetic.n=20", "data.image_size=32", "data.batch_size=2", "data.num_workers=0",
    "model=unet", "model.base_channels=4", "trainer.epochs=1", "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1", "trainer.test_after_fit=false", "trainer.progress=false",
]


def _run(args: list[str]) -> float:
    """Wall seconds of `python <args>`; raises RuntimeError with its output if it fails."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"`python {' '.join(args)}` failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def _job(work: Path, logger: str, name: str) -> tuple[list[str], Path]:
    """Arguments of a tiny training job and the run directory it writes."""
    run_dir = work / "runs" / name
    logger_args = (["logger=wandb", "logger.mode=offline", "logger.log_images_every=0"] if logger == "wandb"
                   else ["logger=none"])
    return ["-m", "seg.train", *TINY_JOB, *logger_args, f"paths.root_dir={work}", f"hydra.run.dir={run_dir}"], run_dir


def _stages(work: Path, repeat: int) -> dict[str, tuple[list[str], Path | None]]:
    """Stage -> (python arguments, run directory of a training job or None)."""
    return {
        "python start": (["-c", "pass"], None),
        "python start + import seg.train": (["-c", "import seg.train"], None),
        "job, logger=none": _job(work, "none", f"none-{repeat}"),
        "job, W&B offline": _job(work, "wandb", f"wandb-{repeat}"),
    }


def _loop_seconds(run_dir: Path) -> float:
    """The seconds of fit's epoch loop that a finished job recorded in its summary.json."""
    summary = RunDir(run_dir).read_summary()
    if summary is None or not summary.status.finished:
        raise RuntimeError(f"the job in {run_dir} left no finished summary.json")
    return summary.seconds


def measure_overhead(work: Path, repeats: int) -> list[dict[str, Any]]:
    """Seconds of each stage, median/min/max over `repeats` rounds (the stages alternate within a round).

    The synthetic data and its cache live under `work` and are written by an untimed first job.
    """
    shutil.rmtree(work / "runs", ignore_errors=True)
    _run(_job(work, "wandb", "warmup")[0])
    walls: dict[str, list[float]] = {}
    loops: dict[str, list[float]] = {}
    for repeat in range(repeats):
        for stage, (args, run_dir) in _stages(work, repeat).items():
            walls.setdefault(stage, []).append(_run(args))
            if run_dir is not None:
                loops.setdefault(stage, []).append(_loop_seconds(run_dir))
    rows = []
    for stage, values in walls.items():
        row: dict[str, Any] = {"stage": stage, "seconds": Stat.of(values).to_json()}
        if stage in loops:
            row["epoch_loop_s"] = Stat.of(loops[stage]).to_json()
            row["outside_loop_s"] = Stat.of([w - e for w, e in zip(values, loops[stage])]).to_json()
        rows.append(row)
    return rows
