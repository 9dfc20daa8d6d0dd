"""`hydra/sweeper=seg_optuna`: hydra-optuna-sweeper's sweeper running seg's search loop (seg/sweep/search.py).

Its config (`base_seg_optuna`, extended by conf/hydra/sweeper/seg_optuna.yaml) is the plugin's with the heartbeat
keys of parallel workers. A search that cannot start (bad search space, a study of other settings) or that aborts
(too many failed trials) ends with one `error: ...` line on stderr and a non-zero exit, not a traceback.
"""

# no `from __future__ import annotations`: Hydra imports plugins outside sys.modules, where a dataclass cannot
# resolve string annotations
import sys
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


@dataclass
class SegOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.seg_sweeper.seg_optuna_sweeper.SegOptunaSweeper"
    # seconds between the heartbeats a worker records for each trial it runs
    heartbeat_interval: int = 20
    # seconds without a heartbeat after which a running trial counts as its worker's death: failed and rerun
    grace_period: int = 120
    # seconds the storage may stay locked (sqlite) or unreachable (a server) before the search stops in one line
    storage_timeout: float = 30.0


ConfigStore.instance().store(group="hydra/sweeper", name="base_seg_optuna", node=SegOptunaSweeperConf, provider="seg")


class SegOptunaSweeper(OptunaSweeper):
    """Same config keys as the plugin's `optuna` sweeper, plus heartbeat_interval and grace_period."""

    def __init__(self, heartbeat_interval: int, grace_period: int, storage_timeout: float, **kwargs: Any) -> None:
        """`kwargs`: the keys of the plugin's OptunaSweeperConf (sampler already instantiated)."""
        from seg.sweep.search import ResumableSearch

        self.sweeper = ResumableSearch(heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                       storage_timeout=storage_timeout, **kwargs)  # fmt: skip

    def sweep(self, arguments: list[str]) -> None:
        """Run the search; a user error or an abort is one line and exit 2 (bad input) or 1 (aborted)."""
        from seg.errors import exit_on_user_error
        from seg.sweep.search import SearchAborted
        from seg.sweep.storage import storage_errors

        with exit_on_user_error(), storage_errors(self.sweeper.storage, self.sweeper.storage_timeout):
            try:
                self.sweeper.sweep(arguments)
            except SearchAborted as e:
                print(f"error: {e}", file=sys.stderr)
                sys.exit(1)
