"""Resume: a resumed run continues exactly as its stored config says.

`python -m seg.train resume=<run dir>` takes the config from the run's last.pt. An override on the command
line may change a key that cannot change results (progress bars, loader workers, W&B, device, paths: the
schema's neutral keys). An override that would change the result (lr, model, data, augmentation, seed, ...)
is refused before anything is written, listing each key with both values. `trainer.epochs` may grow when the
schedule does not depend on the run's length (none, plateau); with cosine or OneCycle it is refused.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seg import schema
from seg.claims import Claim, acquire
from seg.config import result_items, train_config_from_yaml, walk
from seg.errors import ConfigError
from seg.overrides import override_key
from seg.rundir import Checkpoint, RunDir, load_checkpoint, resume_checkpoint_path


@dataclass
class Resume:
    """An accepted resume: the run, its last.pt, and the config the run continues with."""

    run: RunDir
    checkpoint: Checkpoint
    config: schema.TrainConfig
    extended_from: int | None = None  # the stored trainer.epochs, when this resume extends the run


def claim_run(cfg: schema.TrainConfig, job_dir: Path) -> Claim | None:
    """Claim the run directory this command writes (the run `resume=` names, else its own job directory) before
    anything is read from it or written to it: a second command on that run stops with ClaimBusy. Rank 0 only."""
    if os.environ.get("RANK", "0") != "0":
        return None
    target = resume_checkpoint_path(str(cfg.resume))[0].path if cfg.resume else job_dir
    return acquire(target, "seg.train", hint=f"run one command per run; when it has ended: seg.train resume={target}")


def touched_prefixes(overrides: list[str]) -> list[str]:
    """The config keys the command-line overrides set: `a.b=v` sets `a.b`; `model=x` the node `model`;
    a `_global_` group (experiment=..., debug=...) may set any key: ''."""
    prefixes = []
    for override in overrides:
        key = override_key(override, package=False)
        if key == "resume" or key.startswith("hydra.") or key == "hydra":
            continue
        prefixes.append("" if key.split("/", 1)[0] in schema.GLOBAL_GROUPS else key.replace("/", "."))
    return prefixes


def _under(key: str, prefixes: list[str]) -> bool:
    return any(p == "" or key == p or key.startswith(p + ".") for p in prefixes)


def resume_run(composed: schema.TrainConfig, overrides: list[str]) -> Resume:
    """Decide a resume; ConfigError (one line, every differing key) when the overrides would change the result."""
    run, last = resume_checkpoint_path(str(composed.resume))
    checkpoint = load_checkpoint(last)
    stored = train_config_from_yaml(checkpoint.config, str(last))
    touched = touched_prefixes(overrides)
    old, new = result_items(stored), result_items(composed)
    differing = sorted(k for k in set(old) | set(new) if _under(k, touched) and old.get(k) != new.get(k))
    extended_from = None
    if "trainer.epochs" in differing and _extendable(stored, new["trainer.epochs"], checkpoint.epoch):
        differing.remove("trainer.epochs")
        extended_from = stored.trainer.epochs
    if differing:
        details = "; ".join(f"{k} (run: {old.get(k, '-')}, this command: {new.get(k, '-')}{_why(k, stored)})"
                            for k in differing)  # fmt: skip
        raise ConfigError(
            f"resume={run.path} refused: it would change what the run computes: {details}. Resume continues the "
            "run exactly as it was trained: drop these overrides, or start a new run without resume="
        )
    config = dataclasses.replace(stored, resume=str(run.path))
    for key, value, _ in walk(composed):
        if _under(key, touched) and key not in old:  # neutral keys the command sets
            _set(config, key, value, composed)
    if extended_from is not None:
        config.trainer.epochs = composed.trainer.epochs
    return Resume(run, checkpoint, config, extended_from)


def _extendable(stored: schema.TrainConfig, epochs: int, done: int) -> bool:
    return stored.scheduler.name in schema.EXTENDABLE_SCHEDULES and epochs >= done


def _why(key: str, stored: schema.TrainConfig) -> str:
    if key == "trainer.epochs" and stored.scheduler.name not in schema.EXTENDABLE_SCHEDULES:
        return f": the {stored.scheduler.name} schedule was laid out for the run's length"
    return ""


def _set(config: Any, key: str, value: Any, composed: Any) -> None:
    """Set `key` in `config`; a group whose option differs (logger=none) is taken whole from `composed`."""
    *path, leaf = key.split(".")
    node, source = config, composed
    for part in path:
        if type(getattr(node, part)) is not type(getattr(source, part)):
            setattr(node, part, getattr(source, part))
            return
        node, source = getattr(node, part), getattr(source, part)
    setattr(node, leaf, value)
