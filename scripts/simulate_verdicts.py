"""Simulate the verdict rules of seg.study: false-positive rates, power and seeds spent (the README's tables).

    nice -n 5 python scripts/simulate_verdicts.py [--studies 2000] [--real <study dir>] [--only aa,skew,seq]

- aa: A/A (exchangeable arms), n = 3..12 seeds, 7 comparisons: the family-wise rate of any "difference" within
  the default's largest family (the 4 comparisons of the augmentation ablation, Holm) and within the study (all 7,
  Holm, study.family=study), for each test. The per-seed difference is drawn
  * as the issue names it: normal, t(3), a collapse mixture (one arm of a seed near 0 now and then, either arm
    alike);
  * as the difference of two independent runs of one config, e_A - e_B (what an A/A pair is: seed s shares
    what it shares, and the rest of each run's deviation is its own): runs uniform (the lightest tails), lognormal
    (skewed), collapsing one time in ten, two-mode (each run lands on one of two results, 50/50), and with --real
    the real sample's runs (each arm's per-seed results, centred and scaled to unit sd, pooled);
  * outside the A/A null (symmetric, but no difference of two independent runs has these shapes): uniform
    differences and, with --real, the issue's "real ±" (each comparison's own per-seed differences, resampled,
    random signs: bimodal when the comparison has an effect).
  And the power of one comparison at d = 1, 2, 4 (normal differences, the other 6 null, Holm over 7).
- skew: unequal shapes: a centred lognormal difference (sigma 0.25, 0.5, 1; mean 0, most seeds below 0), an arm
  that collapses one seed in ten but is otherwise better (mean 0, most seeds above 0) and a lognormal with median
  0 (mean above 0). For each test: the rate of any "difference", of one on the side fewer seeds are on (a false
  "ahead on most seeds"), of one against the mean's side (a false "ahead on average") and of one against both.
- seq: looks at 3, 8, 12 seeds (`study.seeds=[0,1,2] study.max_seeds=12 study.looks=3`): the family-wise rate
  over all looks under A/A, and the expected seeds per comparison at d = 0, 2, 4, today's rule (sign flip, Holm
  across the study's 7 comparisons, Bonferroni over looks) against the default (t-test, Holm within each
  ablation: families of 4, 2 and 1 as in `make ablations`, O'Brien-Fleming spending).

Every number is a share of --studies simulated studies (binomial sd about 0.005 at 0.05 with 2,000).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import stats

from seg.study.pvalues import holm, holm_within, pvalues
from seg.study.sequential import nominal_levels
from seg.study.stats import Comparison

M = 7  # comparisons of `make ablations`
GROUPS = ["aug"] * 4 + ["sched"] * 2 + ["arch"]  # its ablations: the Holm families of family=ablation
ALPHA = 0.05
TESTS = ("t", "sign_flip")
Null = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def collapse(rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
    """Small normal noise; one seed in ten one arm (either, alike) scores near 0, a difference of about +-0.9."""
    hit = rng.random(size) < 0.1
    return rng.normal(0, 0.01, size) + hit * rng.choice([-0.9, 0.9], size=size)


NULLS: dict[str, Null] = {
    "normal": lambda rng, size: rng.standard_normal(size),
    "t(3)": lambda rng, size: rng.standard_t(3, size=size),
    "collapse": collapse,
}


def runs(draw: Null) -> Null:
    """The difference of two independent runs whose deviations ``draw`` draws: an A/A pair's difference."""
    return lambda rng, size: draw(rng, size) - draw(rng, size)


RUN_NULLS: dict[str, Null] = {
    "uniform runs": runs(lambda rng, size: rng.uniform(-1, 1, size)),
    "lognormal runs": runs(lambda rng, size: np.exp(rng.standard_normal(size))),
    "collapsing runs": runs(lambda rng, size: rng.normal(0, 0.01, size) - 0.9 * (rng.random(size) < 0.1)),
    "two-mode runs": runs(lambda rng, size: rng.choice([-1.0, 1.0], size=size) + rng.normal(0, 0.05, size)),
}
OUTSIDE: dict[str, Null] = {"uniform differences": lambda rng, size: rng.uniform(-1, 1, size)}


def real_runs_null(arms: list[np.ndarray]) -> Null:
    """A/A from the real sample's runs: each arm's per-seed results centred and scaled to unit sd (its shape, not
    its level or spread), pooled, and the difference of two drawn at random."""
    pool = np.concatenate([(a - a.mean()) / a.std(ddof=1) for a in arms if len(a) >= 3 and a.std() > 0])
    return runs(lambda rng, size: rng.choice(pool, size=size))


def real_null(diffs: list[np.ndarray]) -> Null:
    """Comparison j's own per-seed differences, resampled, each with a random sign (the issue's construction:
    symmetric, but bimodal when the comparison has an effect, which no A/A difference is)."""

    def draw(rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
        cols = [rng.choice(d, size=size[:-2] + (1,) + size[-1:]) for d in diffs]
        return np.concatenate(cols, axis=-2) * rng.choice([-1.0, 1.0], size=size)

    return draw


def family_rate(test: str, diffs: np.ndarray, groups: list[str] | None = None) -> np.ndarray:
    """(studies, M) flags: Holm-adjusted p <= ALPHA (across all M, or within ``groups``)."""
    p = pvalues(test, diffs)
    return (holm(p) if groups is None else holm_within(p, groups)) <= ALPHA


def aa(n_studies: int, real: dict[str, dict[str, Null]], rng: np.random.Generator, tests: list[str]) -> None:
    print(f"\n## A/A: family-wise false-positive rate (largest ablation family of 4 / all {M} comparisons, Holm), "
          "and power of one comparison at d = 1, 2, 4 (Holm over 7)")
    kinds = {"issue": NULLS, "runs": {**RUN_NULLS, **real.get("runs", {})},
             "outside": {**OUTSIDE, **real.get("outside", {})}}  # fmt: skip
    for test in tests:
        for kind, nulls in kinds.items():
            print(f"\n{test}, {kind}:\n| null | " + " | ".join(f"n = {n}" for n in range(3, 13)) + " |")
            print("|---|" + "---|" * 10)
            for name, null in nulls.items():
                cells = []
                for n in range(3, 13):
                    diffs = null(rng, (n_studies, M, n))
                    fam, study = family_rate(test, diffs, GROUPS)[:, :4], family_rate(test, diffs)
                    cells.append(f"{fam.any(-1).mean():.3f} / {study.any(-1).mean():.3f}")
                print(f"| {name} | " + " | ".join(cells) + " |")
                sys.stdout.flush()
        power = []
        for n in range(3, 13):
            for d in (1, 2, 4):
                diffs = rng.standard_normal((n_studies, M, n))
                diffs[:, 0] += d
                power.append(f"{family_rate(test, diffs)[:, 0].mean():.3f}")
        print(f"\n{test}, power d = 1 / 2 / 4:\n| " + " | ".join(f"n = {n}" for n in range(3, 13)) + " |")
        print("|" + "---|" * 10 + "\n| " + " | ".join(" / ".join(power[i:i + 3]) for i in range(0, 30, 3)) + " |")


def lognormal(sigma: float, centre: str) -> Null:
    """exp(sigma Z) less its mean (``centre="mean"``: mean 0, most seeds below 0) or its median (mean > 0)."""
    shift = np.exp(sigma**2 / 2) if centre == "mean" else 1.0
    return lambda rng, size: np.exp(sigma * rng.standard_normal(size)) - shift


def collapse_but_better(rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
    """The arm is 0.02 better on 9 seeds in 10 and collapses (-0.18) on the tenth: mean 0, most seeds ahead."""
    return np.where(rng.random(size) < 0.1, -0.18, 0.02) + rng.normal(0, 0.005, size)


def skew(n_studies: int, rng: np.random.Generator, tests: list[str]) -> None:
    """Cells: share of studies with any difference / one on the side fewer seeds are on (against the majority) /
    one against the mean's side (mean 0: any) / one against both."""
    cases: dict[str, tuple[Null, float, float]] = {}  # null, P(D > 0) - 1/2, mean
    for sigma in (0.25, 0.5, 1.0):
        cases[f"lognormal {sigma:g}, mean 0"] = (lognormal(sigma, "mean"), 0.5 - stats.norm.cdf(sigma / 2), 0.0)
    cases["lognormal 1, median 0"] = (lognormal(1.0, "median"), 0.0, np.exp(0.5) - 1)
    cases["collapse but better, mean 0"] = (collapse_but_better, 0.4, 0.0)
    print(f"\n## Skewed nulls, {M} comparisons (Holm): any difference / against most seeds / against the mean / "
          "against both")
    print("| null | test | " + " | ".join(f"n = {n}" for n in (3, 5, 9, 12)) + " |")
    print("|---|---|---|---|---|---|")
    for name, (null, majority, true_mean) in cases.items():
        for test in tests:
            cells = []
            for n in (3, 5, 9, 12):
                diffs = null(rng, (n_studies, M, n))
                called = family_rate(test, diffs)
                side = np.sign(diffs.mean(axis=-1))
                vs_majority = called & (side != np.sign(majority))
                vs_mean = called & (side != np.sign(true_mean))
                rates = [called, vs_majority, vs_mean, vs_majority & vs_mean]
                cells.append(" / ".join(f"{r.any(-1).mean():.3f}" for r in rates))
            print(f"| {name} | {test} | " + " | ".join(cells) + " |")
        sys.stdout.flush()


RULES = {"today: sign flip, Holm over 7, Bonferroni looks": ("sign_flip", None, "bonferroni"),
         "default: t, Holm within ablation, O'Brien-Fleming": ("t", GROUPS, "obrien_fleming"),
         "t, Holm within ablation, Pocock": ("t", GROUPS, "pocock"),
         "t, Holm over 7, O'Brien-Fleming": ("t", None, "obrien_fleming")}  # fmt: skip
SCHEDULE = (3, 8, 12)


def sequential_run(test: str, groups: list[str] | None, spending: str, diffs: np.ndarray) -> tuple[np.ndarray,
                                                                                                 np.ndarray]:
    """Run the looks on (studies, M, 12) differences: (crossed at some look (studies, M), seeds spent (studies, M)).

    Holm over the sequential p's, which is Holm at each look against that look's nominal levels for alpha/(m-j):
    done here through the boundary table of every alpha / k, k = 1..M."""
    crossed = np.zeros(diffs.shape[:2], dtype=bool)
    spent_seeds = np.full(diffs.shape[:2], SCHEDULE[-1])
    levels = {k: nominal_levels(ALPHA / k, SCHEDULE, spending) for k in range(1, M + 1)}
    fams = groups or ["study"] * M
    for look, n in enumerate(SCHEDULE):
        p = pvalues(test, diffs[..., :n])
        now = np.zeros_like(crossed)
        for fam in dict.fromkeys(fams):
            idx = np.array([i for i, f in enumerate(fams) if f == fam])
            sub = p[:, idx]
            order = np.argsort(sub, axis=-1)
            ranked = np.take_along_axis(sub, order, axis=-1)
            thresholds = np.array([levels[len(idx) - j][look] for j in range(len(idx))])
            passed = np.cumprod(ranked <= thresholds, axis=-1).astype(bool)  # step-down: stop at the first failure
            flags = np.zeros_like(passed)
            np.put_along_axis(flags, order, passed, axis=-1)
            now[:, idx] = flags
        newly = now & ~crossed
        spent_seeds[newly] = n
        crossed |= now
    return crossed, spent_seeds


def sequential(n_studies: int, rng: np.random.Generator) -> None:
    print(f"\n## Sequential looks at {SCHEDULE} seeds: FWER over all looks (A/A) and expected seeds per comparison")
    print("FWER: over all looks, within the first Holm family (all 7 comparisons, or the 4 of the augmentation "
          "ablation).")
    print("| rule | " + " | ".join(f"FWER {k}" for k in NULLS) + " | seeds d=0 | seeds d=2 | seeds d=4 |")
    print("|---|" + "---|" * (len(NULLS) + 3))
    for label, (test, groups, spending) in RULES.items():
        fams = groups or ["study"] * M
        rates = []
        for null in NULLS.values():
            crossed = sequential_run(test, groups, spending, null(rng, (n_studies, M, SCHEDULE[-1])))[0]
            rates.append(crossed[:, [f == fams[0] for f in fams]].any(-1).mean())
        seeds = [sequential_run(test, groups, spending, rng.standard_normal((n_studies, M, SCHEDULE[-1])) + d)[1]
                 .mean() for d in (0, 2, 4)]  # fmt: skip
        print(f"| {label} | " + " | ".join(f"{r:.3f}" for r in rates) + " | "
              + " | ".join(f"{s:.1f}" for s in seeds) + " |")
        sys.stdout.flush()


def real_comparisons(study_dir: Path) -> list[Comparison]:
    """Each judged comparison of a (finished) study."""
    from seg.study.report import judged_pairs
    from seg.study.results import StudyRecord, load_runs
    from seg.study.rules import rule_from_settings

    record = StudyRecord.load(study_dir)
    _, pairs = judged_pairs(record, load_runs(study_dir, record.jobs), rule_from_settings(record.settings))
    return [p.comparison for p, _ in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=2000)
    parser.add_argument("--real", type=Path, help="a finished study dir: its per-seed differences as a null shape")
    parser.add_argument("--only", default="aa,skew,seq")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tests", default=",".join(TESTS), help="e.g. t: only the t-test (the sign flip is slow)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    tests = args.tests.split(",")
    parts = args.only.split(",")
    real: dict[str, dict[str, Null]] = {}
    if args.real:
        comps = [c for c in real_comparisons(args.real) if len(c.arm) >= 3]
        arms = list({tuple(a): a for c in comps for a in (c.arm, c.baseline)}.values())  # a shared baseline once
        real["runs"] = {"real runs": real_runs_null(arms)}
        real["outside"] = {"real ±": real_null([comps[i % len(comps)].arm - comps[i % len(comps)].baseline
                                                for i in range(M)])}  # fmt: skip
        print(f"real: {len(comps)} comparisons of {args.real}, seeds {[len(c.arm) for c in comps]}")
    if "aa" in parts:
        aa(args.studies, real, rng, tests)
    if "skew" in parts:
        skew(args.studies, rng, tests)
    if "seq" in parts:
        sequential(args.studies, rng)


if __name__ == "__main__":
    main()
