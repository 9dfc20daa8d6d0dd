"""Run the real command-line entry points in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_cli(
    module: str, *args: str, cwd: Path | None = None, timeout: int = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` with W&B offline; returns the finished process (text output)."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0"}
    full_env.pop("WANDB_API_KEY", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_csv_columns(path: Path) -> dict[str, list[float]]:
    """A CSV of numbers as {column: values}, in file order."""
    import csv

    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [float(r[key]) for r in rows] for key in rows[0]} if rows else {}


def wandb_records(wandb_file: Path) -> list[dict]:
    """Every record of an offline W&B run's .wandb log, as JSON (`wandb leet inspect --json`)."""
    import json

    wandb_cli = Path(sys.executable).with_name("wandb")
    out = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--json", str(wandb_file)],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def wandb_history(wandb_file: Path) -> list[dict]:
    """The logged history rows of an offline W&B run."""
    return [r["history"]["item"] for r in wandb_records(wandb_file) if r.get("type") == "history"]
