"""The jobs of a sweep directory read back from disk: their overrides, summary.json and metrics.csv.

Shared by the end-of-sweep summary (callbacks.py), the Optuna sweeper and `python -m seg.report`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from seg.engine.history import read_metrics
from seg.rundir import RunDir, Summary

SUMMARY_COLUMNS = ["job", "overrides", "status", "best_val_dice", "test_dice", "epochs", "seconds"]


@dataclass
class JobResult:
    """One job of a sweep: what it was asked (overrides) and what it reported (summary.json)."""

    job_dir: Path
    overrides: list[str]
    summary: Summary | None = None

    @property
    def status(self) -> str:
        """completed | pruned | failed | interrupted | running | missing (no summary.json)."""
        return "missing" if self.summary is None else self.summary.status.value

    @property
    def best_val_dice(self) -> float | None:
        return None if self.summary is None else self.summary.best_val_dice

    @property
    def test_dice(self) -> float | None:
        return None if self.summary is None else self.summary.test_dice

    @property
    def epochs(self) -> int | None:
        return None if self.summary is None else self.summary.epochs

    @property
    def seconds(self) -> float | None:
        return None if self.summary is None else self.summary.seconds

    def override_map(self) -> dict[str, str]:
        """`key=value` overrides as {key: value} (a leading + or ~ dropped from the key)."""
        pairs = (o.split("=", 1) for o in self.overrides if "=" in o)
        return {k.lstrip("+~"): v for k, v in pairs}

    def metrics(self) -> list[dict[str, float]]:
        """The per-epoch rows of metrics.csv ([] when absent)."""
        return read_metrics(self.job_dir / "metrics.csv")

    def row(self) -> dict[str, Any]:
        """The job's row of the sweep summary (SUMMARY_COLUMNS)."""
        return {
            "job": self.job_dir.name,
            "overrides": " ".join(self.overrides),
            "status": self.status,
            "best_val_dice": self.best_val_dice,
            "test_dice": self.test_dice,
            "epochs": self.epochs,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
        }


def load_job(job_dir: Path) -> JobResult:
    """Read one job directory (the one Hydra made, with .hydra/overrides.yaml)."""
    overrides = [str(o) for o in OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")]
    return JobResult(job_dir, overrides, RunDir(job_dir).read_summary())


def load_sweep(sweep_dir: Path) -> list[JobResult]:
    """The jobs of a sweep directory in job order (Hydra's numbered sub-directories)."""
    job_dirs = [p.parent.parent for p in Path(sweep_dir).glob("*/.hydra/overrides.yaml")]
    return [load_job(d) for d in sorted(job_dirs, key=lambda d: (not d.name.isdigit(), _job_number(d)))]


def _job_number(job_dir: Path) -> int | str:
    return int(job_dir.name) if job_dir.name.isdigit() else job_dir.name


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: floats rounded, None and NaN as an empty cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured markdown table; cells go through `fmt`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_sweep_summary(sweep_dir: Path, jobs: list[JobResult]) -> tuple[Path, Path]:
    """Write summary.csv and summary.md (one row per job) into `sweep_dir`; returns their paths."""
    csv_path, md_path = sweep_dir / "summary.csv", sweep_dir / "summary.md"
    rows = [job.row() for job in jobs]
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    cells = [[fmt(r[c], digits=1 if c == "seconds" else 4) for c in SUMMARY_COLUMNS] for r in rows]
    table = markdown_table(SUMMARY_COLUMNS, cells)
    md_path.write_text(f"# Sweep {sweep_dir}\n\n{len(rows)} jobs.\n\n{table}\n")
    return csv_path, md_path
