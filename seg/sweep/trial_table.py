"""summary.md and summary.csv of an Optuna search: every trial of its study, over all calls so far.

Each call of `-m hparams_search=...` (a rerun that continues the study, another worker) writes into its own sweep
folder, but the study in the storage holds the trials of all of them. The table lists each trial with the call
(sweep folder) and job folder it ran in, one column per searched parameter (3 significant digits in summary.md,
exact in summary.csv), the overrides every trial shares said once above it, and the trials ranked: completed
ones by their value (best val Dice), then pruned ones by the last val Dice they reached, then the rest by number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from seg.files import atomic_write_text, csv_text
from seg.markdown import fmt, markdown_table
from seg.overrides import override_key
from seg.rundir import RunDir, Status
from seg.sweep.results import JobResult, load_job, shared_overrides, summary_paths
from seg.sweep.storage import INTERRUPTED

# Trial user attribute: the sweep folder (absolute) of the call that asked for the trial; its job folder is
# `<sweep folder>/<trial number>` (recorded at ask time, so that a trial whose job wrote nothing still has one).
SWEEP_DIR = "sweep_dir"
# A trial's state in the words of a run's summary.json (seg.rundir.Status) where there is one.
STATES = {TrialState.COMPLETE: Status.COMPLETED.value, TrialState.PRUNED: Status.PRUNED.value,
          TrialState.FAIL: Status.FAILED.value, TrialState.RUNNING: Status.RUNNING.value, TrialState.WAITING: "queued"}
COLUMNS = ["trial", "call", "job", "status", "best_val_dice", "test_dice", "epochs", "seconds"]
"""The table's columns; one per searched parameter goes after `status`, and `other overrides` last when some
trials' overrides differ in more than the searched parameters."""


@dataclass
class TrialRow:
    """One trial of the study and, when its job folder still exists, that job read back."""

    trial: FrozenTrial
    job: JobResult | None

    @property
    def job_dir(self) -> Path | None:
        """The trial's job folder: the run directory its job reported, else the one it was launched into."""
        run_dir, sweep_dir = self.trial.user_attrs.get("run_dir"), self.trial.user_attrs.get(SWEEP_DIR)
        if run_dir:
            return Path(run_dir).resolve()
        return Path(sweep_dir).resolve() / str(self.trial.number) if sweep_dir else None

    @property
    def status(self) -> str:
        if self.trial.user_attrs.get(INTERRUPTED):
            return Status.INTERRUPTED.value  # its worker stopped; the parameters ran again as a later trial
        return STATES.get(self.trial.state, self.trial.state.name.lower())

    @property
    def value(self) -> float | None:
        """Best val Dice: the job's summary.json, else the trial's value or its last reported val Dice."""
        if self.job is not None and self.job.summary is not None:
            return self.job.best_val_dice
        values = self.trial.intermediate_values
        return self.trial.value if self.trial.value is not None else values[max(values)] if values else None

    def cells(self, params: list[str], searches: Path) -> dict[str, Any]:
        """The row: COLUMNS and each of `params` (exact values); `call` is named within `searches` (the folder of
        the search's calls), in full when it lies elsewhere."""
        folder = self.job_dir
        attrs, job = self.trial.user_attrs, self.job
        call = None if folder is None else str(folder.parent.relative_to(searches) if folder.is_relative_to(searches)
                                               else folder.parent)  # fmt: skip
        return {
            "trial": self.trial.number,
            "call": call,
            "job": folder.name if folder else None,
            "status": self.status,
            **{p: self.trial.params.get(p) for p in params},
            "best_val_dice": self.value,
            "test_dice": None if job is None else job.test_dice,
            "epochs": attrs.get("epochs", None if job is None else job.epochs),
            "seconds": _round(attrs.get("seconds", None if job is None else job.seconds)),
        }


def trial_rows(study: optuna.Study) -> list[TrialRow]:
    """Every trial of `study`, ranked (module docstring), with its job folder read back where it exists."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row = TrialRow(trial, None)
        folder = row.job_dir
        if folder is not None and RunDir(folder).hydra_overrides.is_file():
            row.job = load_job(folder)
        rows.append(row)
    sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
    rank = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1}

    def key(row: TrialRow) -> tuple:
        ranked = row.trial.state in rank and row.value is not None and not row.trial.user_attrs.get(INTERRUPTED)
        return (rank[row.trial.state], sign * row.value, row.trial.number) if ranked else (2, 0.0, row.trial.number)

    return sorted(rows, key=key)


def write_trial_table(study: optuna.Study, sweep_dir: Path, storage: str | None) -> tuple[Path, Path]:
    """summary.csv and summary.md of every trial of `study` into `sweep_dir` (this call's folder); returns them."""
    rows = trial_rows(study)
    params = sorted({p for row in rows for p in row.trial.params})
    own = {row.trial.number: _own_overrides(row, params) for row in rows if row.job is not None}
    shared = shared_overrides(list(own.values()))
    extra = {n: [o for o in job if o not in shared] for n, job in own.items()}
    columns = [*COLUMNS[:4], *params, *COLUMNS[4:]] + (["other overrides"] if any(extra.values()) else [])
    searches = sweep_dir.resolve().parent
    table = [{**row.cells(params, searches), "other overrides": " ".join(extra.get(row.trial.number, []))}
             for row in rows]  # fmt: skip
    csv_path, md_path = summary_paths(sweep_dir)
    atomic_write_text(csv_path, csv_text(columns, table))
    cells = [[_cell(column, row[column]) for column in columns] for row in table]
    calls = sorted({row["call"] for row in table if row["call"]})
    this = f"this one is {sweep_dir.name}" if sweep_dir.name in calls else f"this one, {sweep_dir.name}, ran none"
    every = f"- Every trial: `{' '.join(shared)}`\n" if shared else ""
    atomic_write_text(md_path, (
        f"# Optuna study {study.study_name}\n\n"
        f"- {len(rows)} trials over {len(calls)} call{'' if len(calls) == 1 else 's'} of the search ({this}); a "
        f"job's folder is `{searches}/<call>/<job>`\n- Storage: `{_shown(storage)}`\n{every}"
        "- Completed trials by best val Dice first, then pruned ones (by the last val Dice they reached), then the "
        f"rest\n\n{markdown_table(columns, cells)}\n"
    ))  # fmt: skip
    return csv_path, md_path


def _own_overrides(row: TrialRow, params: list[str]) -> list[str]:
    """The job's overrides less the searched parameters and its trial number."""
    if row.job is None:
        return []
    return [o for o in row.job.overrides if override_key(o) not in (*params, "pruning.trial")]


def _cell(column: str, value: Any) -> str:
    """summary.md's cell: a searched float to 3 significant digits (1.23e-05, 0.000123), scores to 4 decimals."""
    if isinstance(value, float) and column not in COLUMNS:
        return f"{value:.3g}"
    return fmt(value, digits=1 if column == "seconds" else 4)


def _shown(storage: str | None) -> str:
    """The storage URL without its password (a database server's)."""
    if storage is None:
        return "in memory"
    from sqlalchemy.engine import make_url

    return make_url(storage).render_as_string(hide_password=True)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
