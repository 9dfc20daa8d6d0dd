"""Hydra callbacks (conf/hydra/default.yaml: hydra.callbacks)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from seg.sweep.results import load_sweep, write_sweep_summary

log = logging.getLogger(__name__)


class SweepSummary(Callback):
    """At the end of a multirun, write summary.csv and summary.md into the sweep directory.

    One row per job: overrides, status, best val Dice, test Dice, epochs, seconds (from each job's
    summary.json; a job that wrote none is listed with status `missing`).
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = load_sweep(sweep_dir)
        if not jobs:
            return
        _, md_path = write_sweep_summary(sweep_dir, jobs)
        done = sum(job.status in ("completed", "pruned") for job in jobs)
        log.info("Sweep summary (%d of %d jobs finished): %s", done, len(jobs), md_path)
