"""Hydra callbacks (conf/hydra/default.yaml: hydra.callbacks)."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from seg.sweep.crossval import write_cv_summary
from seg.sweep.results import JobResult, load_sweep, summary_paths, write_sweep_summary

log = logging.getLogger(__name__)


class SweepSummary(Callback):
    """At the end of a multirun, write summary.csv and summary.md into the sweep directory.

    One row per job: overrides, status, best val Dice, test Dice, epochs, seconds (from each job's
    summary.json; a job that wrote none is listed with status `missing`). An Optuna search (seg_optuna) has
    written its own, over every trial of its study (seg/sweep/trial_table.py): it is left as it is. When no job
    finished, the command ends with one `error:` line and exit status 1 (Hydra turns an exception raised here into
    a warning and exit 0, so a script or scheduler would take the sweep for a success).
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = load_sweep(sweep_dir)
        if not jobs:
            return
        done = sum(job.status.finished for job in jobs)
        if is_seg_search(config):
            _, md_path = summary_paths(sweep_dir)
        else:
            _, md_path = write_sweep_summary(sweep_dir, jobs)
            log.info("Sweep summary (%d of %d jobs finished): %s", done, len(jobs), md_path)
            cross_validation = write_cv_summary(sweep_dir, jobs)  # a sweep over data.fold: mean ± sd over folds
            if cross_validation is not None:
                print(cross_validation)
        if done == 0:
            print(f"error: {no_job_finished(jobs, md_path)}", file=sys.stderr)
            sys.exit(1)


def is_seg_search(config: DictConfig) -> bool:
    """Whether the multirun is a search of seg's Optuna sweeper (hydra/sweeper=seg_optuna)."""
    return str(OmegaConf.select(config, "hydra.sweeper._target_", default="")).endswith(".SegOptunaSweeper")


def no_job_finished(jobs: list[JobResult], md_path: Path) -> str:
    """The one line for a sweep whose every job failed: how they ended, the first error, where to look."""
    counts = ", ".join(f"{n} {status}" for status, n in Counter(job.status for job in jobs).items())
    first = next((job for job in jobs if job.summary is not None and job.summary.error), None)
    why = f"; job {first.job_dir.name}: {first.summary.error.rstrip('.')}" if first else ""
    return f"no job of the sweep finished ({counts}){why}. Each job's train.log says more; table: {md_path}"
