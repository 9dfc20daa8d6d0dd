"""`hydra/sweeper=seg_study`: runs a study (seg/study/runner.py) through the configured Hydra launcher.

Set by `study=...` configs and by experiments with an `ablation` block; the sweeper's own config has no keys
(the study is the `study` node of the task config, see seg.schema.StudyConfig).
"""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass  # (no `from __future__ import annotations` here: Hydra's plugin scan cannot resolve them)
class SegStudySweeperConf:
    _target_: str = "hydra_plugins.seg_sweeper.seg_study_sweeper.SegStudySweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="seg_study", node=SegStudySweeperConf, provider="seg")


class SegStudySweeper(Sweeper):
    """Expands the study to its unique runs and launches only those not completed yet."""

    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        from seg.errors import exit_on_user_error
        from seg.study.runner import run_study

        assert self.config is not None and self.hydra_context is not None
        with exit_on_user_error():
            try:
                run_study(self.config, arguments, self._compose, self._launch)
            finally:
                _stop_idle_workers()

    def _compose(self, overrides: list[str]) -> DictConfig:
        return self.hydra_context.config_loader.load_sweep_config(self.config, overrides)

    def _launch(self, batch: list[list[str]]) -> None:
        if batch:
            self.launcher.launch(batch, initial_job_idx=self.job_idx)
            self.job_idx += len(batch)


def _stop_idle_workers() -> None:
    """Stop joblib's idle loky workers (hydra/launcher=joblib) once the study is done. Left to the interpreter's
    exit, they are shut down one by one, each tearing down torch and W&B: 10-20 s of silence after `Study report:`
    on a busy 2-core machine. Every job has returned by now, so nothing is lost."""
    from joblib.externals.loky import reusable_executor

    executor = reusable_executor._executor  # the executor joblib's loky backend reuses (None: never started)
    if executor is not None:
        executor.shutdown(wait=False, kill_workers=True)
