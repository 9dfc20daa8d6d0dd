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


def run_dirs(output_dir: Path) -> list[Path]:
    """Run directories (those holding metrics.csv or summary.json) under `output_dir`, sorted."""
    return sorted({p.parent for p in output_dir.rglob("summary.json")})
