"""A study's plan: its ablations expanded to jobs, each keyed by its effective config, shared across ablations.

An ablation (seg.schema.AblationConfig, in an experiment file) compares each value of its `factor` against the
baseline value within each stratum (one combination of the `strata` values), paired by seed. A job is one
(ablation, stratum, arm, seed) with the Hydra overrides that make it; its key is a hash of the effective config
(`seg.config.result_items`: output paths, names, the logger and other result-neutral keys left out), so jobs of
different ablations with the same effective config (UNet + basic + cosine is in two grids) are one run, and a
changed setting is a new key, hence a new run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from seg.config import debug_limits, result_items
from seg.errors import ConfigError
from seg.overrides import override_key
from seg.schema import StudyConfig, TrainConfig

Compose = Callable[[list[str]], TrainConfig]
"""Overrides -> the checked config of the job they make (the sweeper composes through Hydra)."""


@dataclass(frozen=True)
class Ablation:
    """One ablation of a study, read from the `ablation` block of the config that `select` composes."""

    name: str
    factor: str
    values: list[str]
    baseline: str
    strata: dict[str, list[str]] = field(default_factory=dict)
    finding: str | None = None
    select: list[str] = field(default_factory=list)  # e.g. ["experiment=ablation_scheduler"]

    def stratum_overrides(self) -> list[list[str]]:
        """Every combination of the strata values as overrides ([[]] without strata)."""
        combos = itertools.product(*(self.strata[k] for k in self.strata))
        return [[f"{k}={v}" for k, v in zip(self.strata, combo)] for combo in combos]

    def comparisons(self) -> list[tuple[str, str]]:
        """(stratum, arm) of each arm against the baseline, e.g. ("model=unet", "strong")."""
        return [(" ".join(s), arm) for s in self.stratum_overrides() for arm in self.values if arm != self.baseline]


@dataclass(frozen=True)
class Job:
    """One (ablation, stratum, arm, seed) and the run (key) that answers it."""

    ablation: str
    stratum: str  # "model=unet", "" without strata
    arm: str
    seed: int
    overrides: tuple[str, ...]
    key: str
    # None: `seed` drives every random source; else (study.vary) only this one, the others at the base seed
    source: str | None = None
    # study.fold_mode=every: the fold this run validates on (one run per seed and fold); else None (per_seed: fold
    # seed % K is in the overrides, one run per seed)
    fold: int | None = None


def comparison_name(ablation: str, stratum: str, arm: str, baseline: str) -> str:
    """The name a comparison has in verdicts and the report."""
    return f"{ablation}: {arm} vs {baseline}" + (f" ({stratum})" if stratum else "")


def comparison_names(ablations: list[Ablation]) -> list[str]:
    return [comparison_name(a.name, s, arm, a.baseline) for a in ablations for s, arm in a.comparisons()]


def run_key(cfg: TrainConfig) -> str:
    """12 hex digits of a hash of the result-affecting config: equal for runs that compute the same thing."""
    text = json.dumps(result_items(cfg), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def seed_sequence(study: StudyConfig) -> list[int]:
    """The study's seeds in the order they are added: `seeds`, then the next integers up to `max_seeds`."""
    seeds = list(study.seeds)
    while len(seeds) < (study.max_seeds or 0):
        seeds.append(max(seeds) + 1)
    return seeds


def load_ablations(study: StudyConfig, own: TrainConfig, compose: Compose, arguments: list[str]) -> list[Ablation]:
    """The study's ablations: the `ablation` block of each of `study.experiments`, else of the command's config."""
    sources = [[f"experiment={e}"] for e in study.experiments] or [[]]
    ablations = []
    for select in sources:
        cfg = compose(_merge(arguments, select)) if select else own
        spec = cfg.ablation
        if spec is None:
            where = select[0] if select else "this config"
            raise ConfigError(f"{where} has no `ablation` block; a study needs one (see conf/experiment/ablation_*)")
        if spec.baseline not in spec.values:
            raise ConfigError(f"invalid config: ablation.baseline={spec.baseline!r} of {cfg.name} is not one of "
                              f"ablation.values {list(spec.values)}")  # fmt: skip
        ablations.append(Ablation(cfg.name, spec.factor, list(spec.values), spec.baseline,
                                  {k: list(v) for k, v in spec.strata.items()}, spec.finding, select))  # fmt: skip
    names = [a.name for a in ablations]
    if len(set(names)) != len(names):
        raise ConfigError(f"the study's ablations need distinct names (name=...), got {names}")
    return ablations


def expand(ablations: list[Ablation], seeds: dict[str, list[int]], compose: Compose, arguments: list[str],
           keys: dict[tuple[str, ...], str] | None = None, folds: int | None = None,
           vary: list[str] | tuple[str, ...] = (), fold_mode: str = "per_seed") -> list[Job]:  # fmt: skip
    """Every job of the study: per comparison its arm over `seeds[comparison name]`, and the baseline over the
    union of its comparisons' seeds. `keys` caches overrides -> key between calls (composing takes ~0.1 s).
    `folds` (study.folds): seed s trains on fold s % folds, or with `fold_mode` every on each fold (`seed_folds`),
    so verdicts cover the split too. `vary` (study.vary): per arm and source also the jobs of `vary_overrides`
    (Job.source set)."""
    keys = {} if keys is None else keys
    jobs = []
    for ab in ablations:
        for stratum in ab.stratum_overrides():
            where = " ".join(stratum)
            arm_seeds = {arm: seeds[comparison_name(ab.name, where, arm, ab.baseline)]
                         for arm in ab.values if arm != ab.baseline}  # fmt: skip
            arm_seeds[ab.baseline] = sorted({s for v in arm_seeds.values() for s in v})
            for arm in ab.values:
                arm_jobs = [(None, s, fold, seed_overrides(s, folds, fold)) for s in arm_seeds[arm]
                            for fold in seed_folds(s, folds, fold_mode)]  # fmt: skip
                arm_jobs += [(source, s, None, vary_overrides(source, s, arm_seeds[arm][0], folds))
                             for source in vary for s in arm_seeds[arm]]  # fmt: skip
                for source, seed, fold, seeding in arm_jobs:
                    overrides = tuple(_merge(arguments, [*ab.select, f"{ab.factor}={arm}", *stratum, *seeding]))
                    if overrides not in keys:
                        keys[overrides] = run_key(compose(list(overrides)))
                    jobs.append(Job(ab.name, where, arm, seed, overrides, keys[overrides], source,
                                    None if fold_mode == "per_seed" else fold))  # fmt: skip
    return jobs


def vary_overrides(source: str, seed: int, base: int, folds: int | None) -> list[str]:
    """The overrides that vary `source` alone: the base seed's, and `seeds.<source>=<seed>` unless seed is the base
    (that job is the base seed's run itself, shared)."""
    return seed_overrides(base, folds) + ([] if seed == base else [f"seeds.{source}={seed}"])


def seed_folds(seed: int, folds: int | None, fold_mode: str) -> list[int | None]:
    """The folds seed `seed` trains on: [None] without study.folds; with study.folds=K, [seed % K] (fold_mode
    per_seed: the split varies with the seed) or every fold 0..K-1 (every: each seed crosses every split)."""
    if folds is None:
        return [None]
    return [seed % folds] if fold_mode == "per_seed" else list(range(folds))


def seed_overrides(seed: int, folds: int | None, fold: int | None = None) -> list[str]:
    """The overrides of a study's seed: `seed=s`, and with study.folds=K the fold it trains on (`fold`, by default
    s % K)."""
    if folds is None:
        return [f"seed={seed}"]
    return [f"seed={seed}", f"data.folds={folds}", f"data.fold={seed % folds if fold is None else fold}"]


def _merge(arguments: list[str], job: list[str]) -> list[str]:
    """The command's overrides, less those of keys the job sets (the job's win), then the job's."""
    keys = {override_key(o) for o in job}
    return [o for o in arguments if override_key(o) not in keys] + job


def describe(cfg: TrainConfig, varied: list[str]) -> str:
    """The settings an ablation holds fixed, in one line (the factor and strata keys, which vary, left out)."""
    items: dict[str, Any] = {
        "data": f"{cfg.data.name} ({cfg.data.root}), {cfg.data.image_size} px, batch {cfg.data.batch_size}",
        "model": cfg.model.name,
        "width": f"base_channels {cfg.model.base_channels}",
        "augmentation": cfg.augmentation.name,
        "optimizer": f"{cfg.optimizer.name} lr {cfg.optimizer.lr:g} wd {cfg.optimizer.weight_decay:g}",
        "scheduler": cfg.scheduler.name,
        "loss": cfg.loss.name,
        "trainer": f"{cfg.trainer.epochs} epochs",
        "DEBUG RUN:": ", ".join(f"{k}={v}" for k, v in debug_limits(cfg).items()),  # a smoke study says it is one
    }
    return "; ".join(f"{k} {v}" for k, v in items.items() if v and k not in {v.split(".")[0] for v in varied})
