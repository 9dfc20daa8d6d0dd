"""Progress of a sweep or an Optuna search (a Hydra callback, conf/hydra/default.yaml): a line per finished job,

    [3/9] lr0.003-s1 test dice 0.87 (1:05) - ETA 0:12

and, on a terminal, a bar over the jobs, from the job folders' summary.json (seg.study.progress). The total is the
number of jobs the command line's sweep makes, or an Optuna search's `n_trials` (a rerun that continues a stored
search counts only what this command runs as it goes). A study reports its own runs (seg.study.runner).
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from seg.rundir import RunDir
from seg.study.progress import watching


def jobs_of_sweep(config: DictConfig) -> int:
    """How many jobs the multirun `config` makes: an Optuna search's n_trials, else the product of the sizes of the
    command line's sweeps (`a=1,2 b=x,y,z`: 6)."""
    sweeper = config.hydra.sweeper
    if "n_trials" in sweeper:
        return int(sweeper.n_trials)
    parsed = OverridesParser.create().parse_overrides([str(o) for o in config.hydra.overrides.task])
    return math.prod(len(list(o.sweep_iterator())) for o in parsed if o.is_sweep_override()) or 1


class SweepProgress(Callback):
    """Watches the sweep's job folders (`<sweep dir>/<job>`) from the command's start to its end."""

    def __init__(self) -> None:
        self.watch: AbstractContextManager | None = None

    def __getstate__(self) -> dict[str, Any]:
        """A launcher (joblib) pickles the callbacks with each job: the driver's watcher stays in the driver."""
        return {"watch": None}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if str(config.hydra.sweeper.get("_target_", "")).endswith("SegStudySweeper"):
            return
        sweep_dir = Path(str(config.hydra.sweep.dir))
        started = {p.name for p in sweep_dir.iterdir()} if sweep_dir.is_dir() else set()

        def jobs() -> list[RunDir]:  # the job folders this command made
            found = sweep_dir.glob("*/summary.json") if sweep_dir.is_dir() else []
            return [RunDir(p.parent) for p in sorted(found) if p.parent.name not in started]

        self.watch = watching(jobs, jobs_of_sweep(config))
        self.watch.__enter__()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.watch is not None:
            self.watch.__exit__(None, None, None)
            self.watch = None
