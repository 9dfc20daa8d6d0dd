"""A study on disk: its record (study.json), its runs (runs/<key>/, read through seg.rundir) and the paired
comparisons the verdicts judge. Shared by the study runner (between looks) and seg.report.

Everything read here is validated before anyone judges it (seg.study.validate): a study.json that is not what the
runner writes (missing keys, wrong types, non-finite numbers, an unknown metric, a name that is not one plain file
name) is a StudyFileError naming the file and the key; a run whose summary.json or per-image CSV holds bad numbers
is a run that did not complete, with the file and key as its error, and is never averaged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from seg.engine.evaluation import read_per_image
from seg.files import atomic_write
from seg.rundir import RunDir, Status, Summary
from seg.study.plan import Ablation, Job, comparison_name
from seg.study.stats import Comparison
from seg.study.validate import checked_record, per_image_problem, read_json, summary_problem

log = logging.getLogger(__name__)

STUDY_FILE = "study.json"


@dataclass
class StudyRecord:
    """study.json: what the last command asked (settings, ablations, jobs) and what each command did."""

    name: str
    settings: dict[str, Any]  # the StudyConfig
    alpha_look: float  # the last look's nominal p threshold for one comparison (alpha with one look; rules.py)
    ablations: list[Ablation]
    jobs: list[Job]
    descriptions: dict[str, str] = field(default_factory=dict)  # ablation -> its fixed settings in one line
    invocations: list[dict[str, Any]] = field(default_factory=list)  # per command: counts of runs and seconds

    @property
    def checkpoint(self) -> str:
        """Whose test Dice the study judges (study.checkpoint; best before it existed)."""
        return self.settings.get("checkpoint", "best")

    @property
    def runs_per_seed(self) -> int:
        """Runs per seed and arm: K with study.folds=K and study.fold_mode=every (one per fold), else 1."""
        every = self.settings.get("folds") and self.settings.get("fold_mode", "per_seed") == "every"
        return int(self.settings["folds"]) if every else 1

    def save(self, study_dir: Path) -> None:
        atomic_write(study_dir / STUDY_FILE, (json.dumps(dataclasses.asdict(self), indent=1) + "\n").encode())

    @classmethod
    def load(cls, study_dir: Path) -> StudyRecord:
        """study.json, validated (StudyFileError naming the file and the key)."""
        path = study_dir / STUDY_FILE
        data = checked_record(read_json(path), path, [f.name for f in dataclasses.fields(cls)])
        data["ablations"] = [Ablation(**a) for a in data["ablations"]]
        data["jobs"] = [Job(**{**j, "overrides": tuple(j["overrides"])}) for j in data["jobs"]]
        return cls(**data)


def run_path(study_dir: Path, key: str) -> Path:
    return study_dir / "runs" / key


@dataclass
class Run:
    """One run of the study, read lazily."""

    key: str
    run: RunDir
    checkpoint: str = "best"  # whose test Dice and per-image CSV are judged (study.checkpoint)
    tta: bool = False  # judge its test with the run's test-time augmentation (trainer.test_tta; `with_tta`)

    @cached_property
    def summary(self) -> Summary | None:
        """The run's summary; one that cannot be trusted (unreadable, bad numbers, a bad per-image CSV) as `failed`
        with the file and key as its error."""
        path = self.run.summary_file
        if not path.is_file():
            return None
        try:
            summary = Summary.from_json(path.read_text())
        except (OSError, ValueError, KeyError, TypeError) as e:
            return self._untrusted(None, f"{path} is not a summary seg wrote ({type(e).__name__}: {e})")
        problem = summary_problem(summary, path) or per_image_problem(self.run.test_per_image_of(self.checkpoint,
                                                                                                 self.tta))
        return summary if problem is None else self._untrusted(summary, problem)

    def _untrusted(self, summary: Summary | None, problem: str) -> Summary:
        log.warning("%s: not judged", problem)
        base = summary or Summary(Status.FAILED, str(self.run.path))
        return dataclasses.replace(base, status=Status.FAILED, error=f"not judged: {problem}")

    @property
    def completed(self) -> bool:
        return self.summary is not None and self.summary.status == Status.COMPLETED

    def value(self, metric: str) -> float | None:
        """test_dice (mean over test images) or best_val_dice of a completed run, else None."""
        if not self.completed:
            return None
        if metric == "test_dice":
            return self.summary.test_dice_of(self.checkpoint, self.tta)
        return self.summary.best_val_dice

    def with_tta(self) -> Run:
        """The same run judged by its test with test-time augmentation (value None when it has none)."""
        return Run(self.key, self.run, self.checkpoint, tta=True)

    @cached_property
    def per_image(self) -> dict[str, float] | None:
        """{test image: Dice} of a completed run (validated with its summary), or None without test_per_image.csv."""
        csv = self.run.test_per_image_of(self.checkpoint, self.tta)
        if not self.completed or not csv.is_file():
            return None
        return {name: row[0] for name, row in read_per_image(csv).items()}

    @cached_property
    def curves(self) -> list[dict[str, float]]:
        return self.run.read_metrics()


def load_runs(study_dir: Path, jobs: list[Job], checkpoint: str = "best") -> dict[str, Run]:
    """The study's runs, judged by the test Dice of `checkpoint` (one of seg.constants.CHECKPOINTS)."""
    return {j.key: Run(j.key, RunDir(run_path(study_dir, j.key)), checkpoint) for j in jobs}


Label = int | tuple[int, int]
"""A run's place in its cell: its seed, or (seed, fold) with study.fold_mode=every (several runs per seed)."""


def cells(jobs: list[Job]) -> dict[tuple[str, str, str], dict[Label, str]]:
    """{(ablation, stratum, arm): {seed or (seed, fold): run key}} in plan order (the jobs whose seed varies every
    source)."""
    out: dict[tuple[str, str, str], dict[Label, str]] = {}
    for j in (j for j in jobs if j.source is None):
        out.setdefault((j.ablation, j.stratum, j.arm), {})[j.seed if j.fold is None else (j.seed, j.fold)] = j.key
    return out


def label_text(label: Label, long: bool = False) -> str:
    """`s1`, or `s1 f2` for fold 2 of seed 1 (long: `seed 1`, `seed 1 fold 2`)."""
    seed, fold = (label, None) if isinstance(label, int) else label
    return (f"seed {seed}" if long else f"s{seed}") + ("" if fold is None else f" fold {fold}" if long else f" f{fold}")


def by_seed(cell: dict[Label, str]) -> dict[int, dict[int | None, str]]:
    """A cell's run keys by seed, then fold (None: one run per seed)."""
    out: dict[int, dict[int | None, str]] = {}
    for label, key in cell.items():
        seed, fold = (label, None) if isinstance(label, int) else label
        out.setdefault(seed, {})[fold] = key
    return out


@dataclass
class FoldMean:
    """One seed of a study.fold_mode=every comparison: its runs on the folds where both arms completed, averaged.
    The seed stays the independent unit the paired test counts (its folds share the seed's other randomness and
    overlap in training data: counted as K units they would shrink the CI); the fold effect cancels within each
    (seed, fold) pair before the average."""

    runs: list[Run]

    def value(self, metric: str) -> float:
        return float(np.mean([r.value(metric) for r in self.runs]))

    @property
    def per_image(self) -> dict[str, float] | None:
        tables = [r.per_image for r in self.runs]
        if any(t is None for t in tables):
            return None
        names = set.intersection(*(set(t) for t in tables))
        return {n: float(np.mean([t[n] for t in tables])) for n in sorted(names)}


def seed_units(arm: dict[Label, str], base: dict[Label, str], runs: dict[str, Run],
                metric: str) -> dict[int, tuple[Run | FoldMean, Run | FoldMean]]:  # fmt: skip
    """{seed: (arm, baseline)} of the seeds where both arms completed a run on the same fold; with several folds
    per seed, each side is the mean over those folds (FoldMean)."""
    arm_seeds, base_seeds = by_seed(arm), by_seed(base)
    out = {}
    for seed, arm_folds in arm_seeds.items():
        folds = [f for f, k in arm_folds.items() if f in base_seeds.get(seed, {}) and None not in
                 (runs[k].value(metric), runs[base_seeds[seed][f]].value(metric))]  # fmt: skip
        if folds == [None]:
            out[seed] = (runs[arm_folds[None]], runs[base_seeds[seed][None]])
        elif folds:
            out[seed] = (FoldMean([runs[arm_folds[f]] for f in folds]),
                         FoldMean([runs[base_seeds[seed][f]] for f in folds]))  # fmt: skip
    return out


@dataclass
class Paired:
    """One comparison of the study and the seeds at which both of its arms completed."""

    name: str
    ablation: str
    stratum: str
    arm: str
    baseline: str
    seeds: list[int]
    comparison: Comparison | None  # None: no seed with both runs completed


def paired_comparisons(ablations: list[Ablation], jobs: list[Job], runs: dict[str, Run], metric: str) -> list[Paired]:
    """Every comparison of the study, its arm and baseline paired by seed (and by test image, for test_dice); with
    study.fold_mode=every by (seed, fold), each seed's folds then averaged (FoldMean)."""
    by_cell = cells(jobs)
    out = []
    for ab in ablations:
        for stratum, arm in ab.comparisons():
            units = seed_units(by_cell.get((ab.name, stratum, arm), {}),
                                by_cell.get((ab.name, stratum, ab.baseline), {}), runs, metric)  # fmt: skip
            seeds = list(units)
            name = comparison_name(ab.name, stratum, arm, ab.baseline)
            comparison = None
            if seeds:
                a, b = [units[s][0] for s in seeds], [units[s][1] for s in seeds]
                images = image_arrays(a, b) if metric == "test_dice" else None
                comparison = Comparison(name, np.array([r.value(metric) for r in a]),
                                        np.array([r.value(metric) for r in b]), *(images or (None, None)))  # fmt: skip
            out.append(Paired(name, ab.name, stratum, arm, ab.baseline, seeds, comparison))
    return out


def image_arrays(arm: list[Run | FoldMean], base: list[Run | FoldMean]) -> tuple[np.ndarray, np.ndarray] | None:
    """(n_seeds, n_images) per-image Dice of both arms on the test images every run scored; None if a run has none."""
    tables = [r.per_image for r in arm + base]
    if any(t is None for t in tables):
        return None
    names = sorted(set.intersection(*(set(t) for t in tables)))
    if not names:
        return None
    a = np.array([[t[n] for n in names] for t in tables[:len(arm)]])
    b = np.array([[t[n] for n in names] for t in tables[len(arm):]])
    return a, b
