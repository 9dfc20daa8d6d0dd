"""The checkpoints seg.evaluate and seg.predict score: one (`ckpt=best.pt`), a list (`ckpt=[a.pt,b.pt]`) or the
completed seeds of a study's arm (`ensemble=<study dir> arm=<arm>`), and the checks that they can be averaged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seg.errors import ConfigError, SegError
from seg.inference import combine, load_trained_model
from seg.rundir import STUDIES
from seg.schema import TrainConfig

EXAMPLE = "ckpt=outputs/runs/<name>/<time>/checkpoints/best.pt, ckpt=[a.pt,b.pt] or ensemble=<study dir> arm=<arm>"


def checkpoint_paths(ckpt: str | list[str] | None, ensemble: str | None, arm: str | None) -> list[Path]:
    """The checkpoint files to score, in the order given (a study arm's: by seed). ConfigError when neither or
    both of `ckpt` and `ensemble` are given, or `arm` is missing."""
    if (ckpt is None) == (ensemble is None):
        raise ConfigError(f"give either ckpt or ensemble, e.g. {EXAMPLE}")
    if ensemble is not None:
        if arm is None:
            raise ConfigError(f"ensemble={ensemble} needs arm=<arm name>, e.g. arm=resnet34_unet")
        return arm_checkpoints(Path(ensemble), arm)
    paths = [ckpt] if isinstance(ckpt, str) else list(ckpt)
    if not paths:
        raise ConfigError(f"ckpt=[] names no checkpoint; e.g. {EXAMPLE}")
    return [Path(p).expanduser() for p in paths]


def arm_checkpoints(study_dir: Path, arm: str) -> list[Path]:
    """best.pt of every completed seed of `arm` in the study at `study_dir`, by seed.

    `arm` is an arm's value (`resnet34_unet`) or, where the value is an arm in several strata or ablations with
    different runs, `<stratum>/<value>` (`model=unet/basic`)."""
    from seg.study.results import StudyRecord, cells, load_runs

    if not (study_dir / "study.json").is_file():
        raise ConfigError(f"ensemble={study_dir}: not a study folder (no study.json); give "
                          f"<output_dir>/{STUDIES}/<name>")  # fmt: skip
    jobs = StudyRecord.load(study_dir).jobs
    runs = load_runs(study_dir, jobs)
    matching: dict[tuple[str, ...], dict[int, str]] = {}
    names = set()
    for (_, stratum, value), by_seed in cells(jobs).items():
        name = f"{stratum}/{value}" if stratum else value
        names.add(name)
        if arm in (value, name):
            matching[tuple(by_seed.values())] = by_seed
    if not matching:
        raise ConfigError(f"arm={arm} is not an arm of {study_dir}; its arms: {', '.join(sorted(names))}")
    if len(matching) > 1:
        raise ConfigError(f"arm={arm} names arms with different runs in {study_dir}; give one of: "
                          f"{', '.join(sorted(n for n in names if n.endswith('/' + arm)))}")  # fmt: skip
    by_seed = next(iter(matching.values()))
    done = [runs[by_seed[s]].run.best for s in sorted(by_seed) if runs[by_seed[s]].completed]
    done = [p for p in done if p.is_file()]
    if not done:
        raise SegError(f"arm={arm} of {study_dir} has no completed run yet; run the study first")
    return done


@dataclass
class Members:
    """The loaded checkpoints: their combined model, paths and configs (the first one's settings are used)."""

    model: nn.Module
    paths: list[Path]
    configs: list[TrainConfig]

    @property
    def trained(self) -> TrainConfig:
        return self.configs[0]

    def describe(self) -> str:
        return self.paths[0].name if len(self.paths) == 1 else f"ensemble of {len(self.paths)} checkpoints"


def load_members(
    paths: list[Path], tta: str, device: torch.device, *, image_size: int | None, threshold: float | None
) -> Members:
    """Load every checkpoint and combine them with `tta`; SegError when they disagree on the image size or the
    threshold and the command does not set it (`data.image_size=...`, `threshold=...`)."""
    loaded = [load_trained_model(p, torch.device("cpu")) for p in paths]
    configs = [cfg for _, cfg in loaded]
    settings: dict[str, tuple[Any, Any]] = {
        "data.image_size": (image_size, lambda c: c.data.image_size),
        "threshold": (threshold, lambda c: c.threshold),
    }
    for key, (given, read) in settings.items():
        values = [read(c) for c in configs]
        if given is None and len(set(values)) > 1:
            unique = len({p.name for p in paths}) == len(paths)
            found = ", ".join(f"{p.name if unique else p}: {v}" for p, v in zip(paths, values))
            raise SegError(f"the checkpoints differ in {key} ({found}); set {key}=... to score them together")
    return Members(combine([m for m, _ in loaded], tta, device), paths, configs)
