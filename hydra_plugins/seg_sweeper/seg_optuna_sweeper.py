"""`hydra/sweeper=seg_optuna`: hydra-optuna-sweeper's sweeper running seg's search loop (seg/sweep/search.py)."""

from __future__ import annotations

from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class SegOptunaSweeper(OptunaSweeper):
    """Same config keys as the plugin's `optuna` sweeper (conf/hydra/sweeper/seg_optuna.yaml extends it)."""

    def __init__(self, **kwargs: Any) -> None:
        """`kwargs`: the keys of the plugin's OptunaSweeperConf (sampler already instantiated)."""
        from seg.sweep.search import ResumableSearch

        self.sweeper = ResumableSearch(**kwargs)
