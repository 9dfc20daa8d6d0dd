"""`hydra/sweeper=seg_optuna`: hydra-optuna-sweeper with resume, failure guards, pruning and plots.

Same config keys as the plugin's `optuna` sweeper (conf/hydra/sweeper/seg_optuna.yaml extends it); the
search loop is seg's (seg/sweep/search.py).
"""

from __future__ import annotations

import sys
from typing import Any

from hydra.core.plugins import Plugins
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

# Hydra 1.3 instantiates a plugin only from a module under `hydra_plugins.`. seg is not a plugin
# distribution, so this module is also importable under this name, which seg_optuna.yaml's `_target_` uses.
PLUGIN_MODULE = "hydra_plugins.seg_sweep"


class SegOptunaSweeper(OptunaSweeper):
    """The plugin's sweeper running `seg.sweep.search.ResumableSearch` instead of its own loop."""

    def __init__(self, **kwargs: Any) -> None:
        """`kwargs`: the keys of the plugin's OptunaSweeperConf (sampler already instantiated)."""
        from seg.sweep.search import ResumableSearch  # imports optuna: only when a search runs

        self.sweeper = ResumableSearch(**kwargs)


def register() -> None:
    """Make `_target_: hydra_plugins.seg_sweep.SegOptunaSweeper` instantiable by Hydra (idempotent)."""
    sys.modules.setdefault(PLUGIN_MODULE, sys.modules[__name__])
    SegOptunaSweeper.__module__ = PLUGIN_MODULE
    Plugins.instance().register(SegOptunaSweeper)
