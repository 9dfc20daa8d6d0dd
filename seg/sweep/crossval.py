"""The cross-validation summary of a multirun over folds (`-m data.folds=5 data.fold=0,1,2,3,4`).

Jobs are grouped by their overrides other than `data.fold` (a sweep over folds and models gives one group per
model); each group gets per-fold rows and the mean ± sd (sample sd, n - 1) of best val Dice and test Dice over its
finished folds. Written as cv_summary.md and cv_summary.csv into the sweep directory and printed at the end of the
sweep (called by seg.sweep.callbacks.SweepSummary).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seg.files import atomic_write_text, csv_text
from seg.markdown import fmt, markdown_table
from seg.sweep.results import JobResult

__all__ = ["FOLD_KEY", "write_cv_summary"]

FOLD_KEY = "data.fold"
CV_COLUMNS = ["setting", "fold", "status", "best_val_dice", "test_dice"]


def _mean_sd(values: list[float | None]) -> str:
    finished = [v for v in values if v is not None]
    if not finished:
        return "-"
    sd = float(np.std(finished, ddof=1)) if len(finished) > 1 else float("nan")
    return f"{np.mean(finished):.4f} ± {sd:.4f} (n={len(finished)})"


def write_cv_summary(sweep_dir: Path, jobs: list[JobResult]) -> str | None:
    """Write cv_summary.md/.csv when the sweep varies `data.fold`; returns the markdown (None: not a CV sweep)."""
    with_fold = [job for job in jobs if FOLD_KEY in job.override_map()]
    if len({job.override_map()[FOLD_KEY] for job in with_fold}) < 2:
        return None
    groups: dict[str, list[JobResult]] = {}
    for job in with_fold:
        rest = " ".join(f"{k}={v}" for k, v in sorted(job.override_map().items()) if k != FOLD_KEY)
        groups.setdefault(rest, []).append(job)
    rows, sections = [], []
    for setting, members in groups.items():
        members.sort(key=lambda j: int(j.override_map()[FOLD_KEY]))
        group_rows = [[setting, j.override_map()[FOLD_KEY], j.status, j.best_val_dice, j.test_dice] for j in members]
        rows += group_rows
        sections.append(
            f"## {setting or 'all folds'}\n\n"
            f"- val Dice (best epoch): {_mean_sd([j.best_val_dice for j in members])}\n"
            f"- test Dice: {_mean_sd([j.test_dice for j in members])}\n\n"
            + markdown_table(CV_COLUMNS[1:], [r[1:] for r in group_rows])
        )
    atomic_write_text(sweep_dir / "cv_summary.csv", csv_text(CV_COLUMNS, [[fmt(c) for c in r] for r in rows]))
    text = f"# Cross-validation over {FOLD_KEY} ({sweep_dir})\n\n" + "\n\n".join(sections) + "\n"
    atomic_write_text(sweep_dir / "cv_summary.md", text)
    return text
