"""The jobs of a sweep directory read back from disk: their overrides, summary.json and metrics.csv.

Shared by the end-of-sweep summary (callbacks.py), the Optuna sweeper and `python -m seg.report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seg.files import atomic_write_text, csv_text
from seg.markdown import fmt, markdown_table
from seg.overrides import override_values
from seg.rundir import RunDir, Status, Summary

SUMMARY_COLUMNS = ["job", "overrides", "status", "best_val_dice", "test_dice", "epochs", "seconds"]


@dataclass
class JobResult:
    """One job of a sweep: what it was asked (overrides) and what it reported (summary.json), read through its
    RunDir (the one reader of a job folder, for sweeps and studies alike)."""

    job_dir: Path
    overrides: list[str]
    summary: Summary | None = None

    @property
    def run(self) -> RunDir:
        return RunDir(self.job_dir)

    @property
    def status(self) -> Status:
        """The summary's status; MISSING when the job wrote no summary.json."""
        return Status.MISSING if self.summary is None else self.summary.status

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
        return override_values(self.overrides)

    def metrics(self) -> list[dict[str, float]]:
        """The per-epoch rows of metrics.csv ([] when absent)."""
        return self.run.read_metrics()

    def row(self) -> dict[str, Any]:
        """The job's row of the sweep summary (SUMMARY_COLUMNS)."""
        return {
            "job": self.job_dir.name,
            "overrides": " ".join(self.overrides),
            "status": self.status.value,
            "best_val_dice": self.best_val_dice,
            "test_dice": self.test_dice,
            "epochs": self.epochs,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
        }


def load_job(job_dir: Path) -> JobResult:
    """Read one job directory (the one Hydra made, with its recorded overrides)."""
    run = RunDir(job_dir)
    return JobResult(job_dir, run.read_overrides(), run.read_summary())


def load_sweep(sweep_dir: Path) -> list[JobResult]:
    """The jobs of a sweep directory in job order (Hydra's numbered sub-directories)."""
    job_dirs = [d for d in Path(sweep_dir).iterdir() if RunDir(d).hydra_overrides.is_file()]
    return [load_job(d) for d in sorted(job_dirs, key=lambda d: (not d.name.isdigit(), _job_number(d)))]


def _job_number(job_dir: Path) -> int | str:
    return int(job_dir.name) if job_dir.name.isdigit() else job_dir.name


def shared_overrides(override_lists: list[list[str]]) -> list[str]:
    """The overrides every list holds, in the first list's order."""
    return [o for o in override_lists[0] if all(o in other for other in override_lists)] if override_lists else []


def summary_paths(sweep_dir: Path) -> tuple[Path, Path]:
    """summary.csv and summary.md of a sweep directory (an Optuna search's: seg/sweep/trial_table.py)."""
    return sweep_dir / "summary.csv", sweep_dir / "summary.md"


def write_sweep_summary(sweep_dir: Path, jobs: list[JobResult]) -> tuple[Path, Path]:
    """Write summary.csv and summary.md (one row per job) into `sweep_dir`; returns their paths."""
    csv_path, md_path = summary_paths(sweep_dir)
    atomic_write_text(csv_path, csv_text(SUMMARY_COLUMNS, [job.row() for job in jobs]))
    atomic_write_text(md_path, summary_markdown(sweep_dir, jobs))
    return csv_path, md_path


def summary_markdown(sweep_dir: Path, jobs: list[JobResult]) -> str:
    """summary.md: the overrides every job shares said once, each job's own overrides with short numbers
    (`optimizer.lr=0.000123`), the jobs sorted by best val Dice (the value the sweep maximises; unfinished last)."""
    shared = shared_overrides([job.overrides for job in jobs]) if len(jobs) > 1 else []
    ranked = sorted(jobs, key=lambda j: -(j.best_val_dice or 0.0) if j.summary and j.summary.status.finished else 1.0)
    cells = []
    for job in ranked:
        row = {**job.row(), "overrides": " ".join(_short(o) for o in job.overrides if o not in shared)}
        cells.append([fmt(row[c], digits=1 if c == "seconds" else 4) for c in SUMMARY_COLUMNS])
    every = f"Every job: `{' '.join(shared)}`.\n\n" if shared else ""
    return (f"# Sweep {sweep_dir}\n\n{len(jobs)} jobs, best val Dice first.\n\n{every}"
            f"{markdown_table(SUMMARY_COLUMNS, cells)}\n")  # fmt: skip


def _short(override: str) -> str:
    """`key=value` with a long float value to 3 significant digits (0.00012345678 -> 0.000123)."""
    key, sep, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return override
    return f"{key}{sep}{number:.3g}" if "." in value or "e" in value.lower() else override
