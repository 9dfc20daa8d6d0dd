"""What a training run is called in W&B (its group, name and tags), decided once at the entry from the command.

seg.train calls `tracking_names` with Hydra's record of the job and gets the config back with `logger.group`,
`logger.run_name` and `logger.tags` filled in: plain values that the engine logs as they are, and that config.yaml
and the checkpoints keep for a resume, `seg.evaluate` and the report.

- A single run: group `logger.group` (the run's `name`), W&B name `name`.
- A sweep job: group `<group>-<sweep folder>` (one per sweep), name the values the sweep varies
  (`model=unet scheduler=onecycle seed=1` -> `unet-onecycle-s1`, `optimizer.lr=0.003` -> `lr0.003`); an Optuna
  trial of a stored study: group `<group>-<study name>` (the group alone when equal), name `t<trial>-lr...`.
- A study's run: the study gives its group, name and tags on the job's command line (seg.study.wandb_runs);
  whatever the command line sets explicitly (`logger.group=...`, `logger.run_name=...`) is kept.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from seg.config import debug_limits
from seg.overrides import override_key
from seg.schema import GROUPS, TrainConfig


def tracking_names(cfg: TrainConfig, hydra: Any) -> TrainConfig:
    """`cfg` with the W&B group, run name and tags of the job Hydra describes (`HydraConfig.get()`).

    A resumed run keeps the names its stored config has (they are written here once, on its first start)."""
    lg = cfg.logger
    overrides = [str(o) for o in hydra.overrides.task]
    given = {override_key(o) for o in overrides}
    group, name = lg.group, lg.run_name
    if str(hydra.mode) in ("MULTIRUN", "RunMode.MULTIRUN") and cfg.resume is None:
        sweeper = hydra.sweeper
        if "logger.group" not in given:
            group = sweep_group(lg.group, Path(str(hydra.sweep.dir)).name, sweeper.get("study_name")
                                if sweeper.get("storage") else None)  # fmt: skip
        if name is None:
            swept = set(sweeper.get("params") or {}) | command_line_sweeps(Path(str(hydra.sweep.dir)))
            name = sweep_job_name(overrides, swept, cfg.pruning.trial if cfg.pruning else None) or (
                f"{cfg.name}-{hydra.job.num}")
    tags = list(dict.fromkeys([*lg.tags, *(["debug"] if debug_limits(cfg) else [])]))
    return dataclasses.replace(cfg, logger=dataclasses.replace(lg, group=group, run_name=name or cfg.name, tags=tags))


def sweep_group(group: str, sweep_folder: str, study_name: str | None) -> str:
    """One group per sweep (`<group>-<sweep folder>`); for a stored Optuna study, one over all its reruns and
    workers (`<group>-<study name>`, the group alone when equal)."""
    if study_name:
        return group if group == study_name else f"{group}-{study_name}"
    return f"{group}-{sweep_folder}"


def sweep_job_name(overrides: Iterable[str], swept: set[str], trial: int | None) -> str:
    """The values of the swept keys among a job's overrides, joined by '-' ('' when none), `t<trial>` first."""
    parts = [f"t{trial}"] if trial is not None else []
    for override in overrides:
        key = override_key(override)
        if key in swept:
            parts.append(name_part(key, override.partition("=")[2]))
    return "-".join(parts)


def command_line_sweeps(sweep_dir: Path) -> set[str]:
    """Keys swept on the command line (`a=1,2`), as the basic sweeper recorded them in the sweep's multirun.yaml."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    multirun_yaml = sweep_dir / "multirun.yaml"
    if not multirun_yaml.is_file():
        return set()
    overrides = OmegaConf.to_container(OmegaConf.load(multirun_yaml).hydra.overrides.task, resolve=False)
    parsed = OverridesParser.create().parse_overrides([str(o) for o in overrides])
    return {o.key_or_group for o in parsed if o.is_sweep_override()}


def name_part(key: str, value: Any) -> str:
    """`seed=1` -> s1, a group choice `model=unet` -> unet, `optimizer.lr=0.0031622` -> lr0.00316, a word
    `model.encoder=resnet18` -> resnet18, `trainer.deterministic=true` -> deterministic-true."""
    text, last = str(value), key.rsplit(".", 1)[-1]
    if key == "seed":
        return f"s{text}"
    if key in GROUPS:
        return text
    if isinstance(value, bool) or text.lower() in ("true", "false", "none", "null"):
        return f"{last}-{text.lower()}"
    try:
        number = float(text)
    except ValueError:
        return text
    return f"{last}{text}" if re.fullmatch(r"[-+]?\d+", text) else f"{last}{number:.3g}"
