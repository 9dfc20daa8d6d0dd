"""Verdicts for ablation comparisons over paired seeds, so that a report never dresses noise as a finding.

A :class:`Comparison` is one arm against its baseline within a stratum, paired by seed (seed s of both arms
shares data order and initialisation), optionally with per-image results on the same test images.
:func:`judge` gives each comparison one of three verdicts under a :class:`~seg.study.rules.Rule` (test, Holm
family, alpha, looks):

- ``"difference"``: the test's p over the per-seed differences (seg.study.pvalues; made sequential over the
  looks by seg.study.sequential), Holm-adjusted within the comparison's family, is <= alpha. **What it claims**:
  the arms do not behave alike. Under the null it tests (exchangeable arms, the same config under two names,
  so each per-seed difference is as likely to be +x as -x) differences this far to one side arise with
  probability <= alpha; the sign of the mean says which arm is ahead. It does not claim that the mean
  differs: with skewed differences (an arm that now and then collapses but is otherwise better) the mean can be
  0 while the arms plainly differ. The sentence gives the mean and its CI as estimates, and says so when that
  CI holds 0.
- ``"no difference"``: not a difference, at least 3 seeds, and the equivalence interval (the hull of the
  paired seed-bootstrap CI and the Student-t CI; the bootstrap alone is too narrow with few seeds) lies
  strictly inside (-margin, +margin).
- ``"unresolved"``: anything else, with the seeds that would resolve it: the fewer of those that give a
  difference 80% power (seg.study.power.seeds_to_resolve at the Holm worst case alpha / family size) and those
  that put the equivalence interval inside the margin with probability 0.8 (seg.study.power.seeds_to_equivalence,
  planned with the Student-t interval), both at the mean and sd seen; ``resolves_as`` says which.

CIs have level 1 - alpha. Equivalence is not adjusted for multiplicity: a two-sided 1 - alpha CI inside the
margin is a TOST at alpha/2 per comparison. Metrics are higher-is-better.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from seg.study.power import MIN_SEEDS_FOR_CI, min_seeds, seeds_to_equivalence, seeds_to_resolve
from seg.study.pvalues import holm_within, permutation_pvalue, t_pvalues
from seg.study.rules import Rule
from seg.study.sequential import look_index, sequential_p

_CHUNK_ELEMENTS = 4_000_000
_NAN_PAIR = (math.nan, math.nan)


@dataclass(frozen=True, eq=False)
class Comparison:
    """One arm against its baseline, paired by seed (and by test image when per-image results are given).

    ``arm``/``baseline``: (n_seeds,) per-seed metric, same seed order; ``*_images``: (n_seeds, n_images).
    """

    name: str
    arm: np.ndarray
    baseline: np.ndarray
    arm_images: np.ndarray | None = None
    baseline_images: np.ndarray | None = None


@dataclass(frozen=True)
class Verdict:
    """The outcome of one comparison; see the module docstring for the rules."""

    name: str
    kind: str  # "difference", "no difference" or "unresolved"
    n_seeds: int
    mean_diff: float  # mean over seeds of arm - baseline
    ci_seeds: tuple[float, float]  # 1 - alpha CI over seeds (t: Student t; sign_flip: paired BCa); nan under 3
    ci_hierarchical: tuple[float, float] | None  # seeds-then-images bootstrap; None without per-image data
    p_value: float  # the rule's test over the seeds, at this look
    p_holm: float  # sequential over the looks (with several) and Holm-adjusted within the family
    p_superior: float  # P(arm > baseline on a new seed), Student-t posterior predictive
    seeds_needed: int | None  # unresolved: total seeds for 80% power; None: over 100, or not unresolved
    margin: float
    rule: Rule = field(default_factory=Rule)
    family: str = "study"  # the Holm family: the ablation's name, or "study"
    family_size: int = 1
    sd_diff: float = math.nan  # sd (ddof=1) of the paired differences
    ahead: int = 0  # seeds on which the arm scored higher than its baseline
    resolves_as: str | None = None  # the verdict seeds_needed plans for: "difference" or "no difference"

    @property
    def alpha(self) -> float:
        return self.rule.alpha

    @property
    def ci_equivalence(self) -> tuple[float, float]:
        """The interval the equivalence rule uses: hull of the seed CI and the Student-t CI."""
        if self.n_seeds < MIN_SEEDS_FOR_CI:
            return _NAN_PAIR
        low, high = t_ci(self.mean_diff, self.sd_diff, self.n_seeds, 1 - self.alpha)
        return min(self.ci_seeds[0], low), max(self.ci_seeds[1], high)

    def sentence(self) -> str:
        """One plain line for report.md: what was found, its size and CI, the p-values, the rule (test, family,
        alpha) and what would resolve it."""
        level = f"{100 * (1 - self.alpha):g}%"
        ci = "no CI from under 3 seeds" if math.isnan(self.ci_seeds[0]) else f"{level} CI {_fmt_ci(self.ci_seeds)}"
        if self.ci_hierarchical is not None and not math.isnan(self.ci_hierarchical[0]):
            ci += f", seeds-then-images CI {_fmt_ci(self.ci_hierarchical)}"
        size = f"mean difference {self.mean_diff:+.4f} ({ci}) over {self.n_seeds} seed{'s' * (self.n_seeds > 1)}"
        p = f"p = {self.p_value:.3g}, adjusted {self.p_holm:.3g}; {self.rule.describe(self.family_size, self.family)}"
        if self.kind == "difference":
            side = "higher" if self.mean_diff > 0 else "lower"
            holds_zero = [c for c in (self.ci_seeds, self.ci_hierarchical or _NAN_PAIR) if c[0] <= 0 <= c[1]]
            caveat = "; a CI of the mean holds 0, so the mean difference itself is not shown" if holds_zero else ""
            return (f"{self.name}: difference: the arms do not behave alike, the arm scores {side} on most seeds or "
                    f"on average ({self.ahead} of {self.n_seeds} seeds ahead; {size}{caveat}); {p}; it beats the "
                    f"baseline on a new seed with probability {self.p_superior:.2f}.")  # fmt: skip
        if self.kind == "no difference":
            return (f"{self.name}: no difference beyond ±{self.margin:g}: {size}; {p}; the {level} equivalence "
                    f"interval {_fmt_ci(self.ci_equivalence)} lies inside the margin.")
        if self.seeds_needed is not None:
            aim = "a difference" if self.resolves_as == "difference" else f"no difference beyond ±{self.margin:g}"
            advice = f"about {self.seeds_needed} seeds would resolve it at the mean and spread seen (80%, as {aim})"
        elif self.n_seeds < 2:
            advice = f"one seed shows no spread; run at least {min_seeds(self.rule.test, self.alpha)} seeds"
        else:
            advice = "the effect is too small against the seed spread for 100 seeds to show a difference"
            low, high = self.ci_equivalence
            if high - low < 2 * self.margin:
                advice += f"; the CI is narrow, so more seeds may show it lies within ±{self.margin:g}"
        floor = 2.0 / 2**self.n_seeds
        limit = ""
        if self.rule.test == "sign_flip" and 1 > floor > self.alpha:
            limit = f" ({self.n_seeds} seeds cannot give a sign-flip p below {floor:.3g})"
        elif self.rule.test == "t" and self.n_seeds < MIN_SEEDS_FOR_CI:
            limit = f" (the t-test is not used under {MIN_SEEDS_FOR_CI} seeds)"
        return f"{self.name}: unresolved, {size}; {p}{limit}; {advice}."


def _fmt_ci(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def _paired_mean(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def t_ci(mean: float, sd: float, n: int, level: float) -> tuple[float, float]:
    """Student-t CI of a mean from n values with sd ``sd`` (ddof=1); (nan, nan) under 3 seeds."""
    if n < MIN_SEEDS_FOR_CI:
        return _NAN_PAIR
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def bootstrap_ci(arm: np.ndarray, baseline: np.ndarray, level: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    """Paired BCa bootstrap CI of the mean difference over seeds (``scipy.stats.bootstrap``; percentile if BCa
    fails). Under 3 seeds (nan, nan); identical differences d give (d, d)."""
    diffs = np.asarray(arm, dtype=float) - np.asarray(baseline, dtype=float)
    if len(diffs) < MIN_SEEDS_FOR_CI:
        return _NAN_PAIR
    if np.ptp(diffs) == 0:
        return float(diffs[0]), float(diffs[0])
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ci = stats.bootstrap((arm, baseline), _paired_mean, paired=True, vectorized=True, method=method,
                                 confidence_level=level, n_resamples=n_resamples,
                                 rng=np.random.default_rng(seed)).confidence_interval
        if np.isfinite(ci.low) and np.isfinite(ci.high):
            break
    return float(ci.low), float(ci.high)


def hierarchical_ci(arm_images: np.ndarray, baseline_images: np.ndarray, level: float = 0.95,
                    n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of the mean per-image difference: resample seeds, then images within each resampled seed.

    Images are paired across arms (same test images), so the per-image differences are resampled. Unlike
    pooling every seed's images as independent samples, this keeps the seed-to-seed spread in the CI.
    """
    diffs = np.asarray(arm_images, dtype=float) - np.asarray(baseline_images, dtype=float)
    n_seeds, n_images = diffs.shape
    if n_seeds < MIN_SEEDS_FOR_CI:
        return _NAN_PAIR
    rng = np.random.default_rng(seed)
    step = max(1, _CHUNK_ELEMENTS // (n_seeds * n_images))
    means = []
    for start in range(0, n_resamples, step):
        size = min(step, n_resamples - start)
        seeds = rng.integers(0, n_seeds, size=(size, n_seeds, 1))
        images = rng.integers(0, n_images, size=(size, n_seeds, n_images))
        means.append(diffs[seeds, images].mean(axis=(1, 2)))
    low, high = np.quantile(np.concatenate(means), [0.5 - level / 2, 0.5 + level / 2])
    return float(low), float(high)


def predictive_superiority(diffs: np.ndarray) -> float:
    """P(arm beats baseline on a new seed): Student-t posterior predictive of the paired difference.

    Under a normal model with the reference prior p(mu, sigma) ~ 1/sigma, a new difference is
    mean + sd * sqrt(1 + 1/n) * t_(n-1); this is its probability of being > 0. nan for one seed.
    """
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n < 2:
        return math.nan
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        return 0.5 + 0.5 * float(np.sign(mean))
    return float(stats.t.cdf(mean / (sd * math.sqrt(1 + 1 / n)), n - 1))


def comparison_pvalue(test: str, arm: np.ndarray, baseline: np.ndarray, seed: int = 0) -> float:
    """p of the rule's test for one comparison: the scipy sign-flip path, or the paired t-test."""
    if test == "sign_flip":
        return permutation_pvalue(arm, baseline, seed)
    return float(t_pvalues(arm - baseline))


def seeds_for(verdict: str, diffs: np.ndarray, rule: Rule, family_size: int, margin: float) -> int | None:
    """Total seeds for ``verdict`` at the mean and spread of ``diffs`` (80%): "difference" under the rule's test at
    the Holm worst case alpha / family size; "no difference": the 1 - alpha interval inside ± ``margin``."""
    if verdict == "difference":
        return seeds_to_resolve(diffs, rule.alpha / family_size, rule.test)
    return seeds_to_equivalence(diffs, margin, 1 - rule.alpha)


def families_of(rule: Rule, groups: Sequence[str] | None, m: int) -> list[str]:
    """Each comparison's Holm family: its group (ablation) under ``family="ablation"``, else "study"."""
    if rule.family == "study" or groups is None:
        return ["study"] * m
    if len(groups) != m:
        raise ValueError(f"need one group per comparison, got {len(groups)} for {m}")
    return list(groups)


def judge(comparisons: list[Comparison], margin: float, rule: Rule | None = None,
          groups: Sequence[str] | None = None, n_resamples: int = 2000, seed: int = 0) -> list[Verdict]:
    """Verdicts for comparisons judged together under ``rule``, in the same order.

    ``groups``: each comparison's ablation (its Holm family under ``rule.family == "ablation"``; without it one
    family). ``margin`` (> 0, metric units) is the largest difference that counts as none. With several looks
    each comparison is judged at the look of its seed count. ``seeds_needed`` (unresolved only) plans for the
    Holm worst case alpha / family size and is at least one more seed than was run.
    """
    rule = rule or Rule()
    if margin < 0:
        raise ValueError(f"need margin >= 0, got {margin}")
    level, families = 1 - rule.alpha, families_of(rule, groups, len(comparisons))
    rows = []
    for c in comparisons:
        arm, base = np.asarray(c.arm, dtype=float), np.asarray(c.baseline, dtype=float)
        if arm.ndim != 1 or arm.shape != base.shape or len(arm) == 0 or not np.isfinite(arm - base).all():
            raise ValueError(f"{c.name}: arm and baseline must be equal-length, non-empty, finite 1-D arrays")
        hier = None
        if c.arm_images is not None and c.baseline_images is not None:
            shape = np.shape(c.arm_images)
            if shape != np.shape(c.baseline_images) or len(shape) != 2 or shape[0] != len(arm):
                raise ValueError(f"{c.name}: per-image arrays must both be (n_seeds, n_images), got {shape}")
            hier = hierarchical_ci(c.arm_images, c.baseline_images, level, n_resamples, seed)
        diffs = arm - base
        sd = float(diffs.std(ddof=1)) if len(diffs) > 1 else math.nan
        ci = (t_ci(float(diffs.mean()), sd, len(diffs), level) if rule.test == "t"
              else bootstrap_ci(arm, base, level, n_resamples, seed))  # fmt: skip
        p = comparison_pvalue(rule.test, arm, base, seed)
        if rule.test == "t" and len(diffs) < MIN_SEEDS_FOR_CI:
            p = 1.0  # two seeds: a t-test on one degree of freedom is not used to call a difference
        look_p = sequential_p(p, look_index(len(diffs), rule.schedule), rule.schedule, rule.spending)
        rows.append((c.name, diffs, sd, ci, hier, p, look_p))
    adjusted = holm_within(np.array([row[6] for row in rows]), families) if rows else np.array([])
    verdicts = []
    for (name, diffs, sd, ci, hier, p, _), p_adj, fam in zip(rows, adjusted, families):
        n, size = len(diffs), families.count(fam)
        v = Verdict(name, "unresolved", n, float(diffs.mean()), ci, hier, p, float(p_adj),
                    predictive_superiority(diffs), None, margin, rule, fam, size, sd, int(np.sum(diffs > 0)))
        low, high = v.ci_equivalence
        equivalent = n >= MIN_SEEDS_FOR_CI and -margin < low and high < margin
        kind = "difference" if v.p_holm <= rule.alpha else "no difference" if equivalent else "unresolved"
        plans = {}
        if kind == "unresolved":
            plans = {aim: seeds_for(aim, diffs, rule, size, margin) for aim in ("difference", "no difference")}
        aim = min((k for k, s in plans.items() if s is not None), key=lambda k: plans[k], default=None)
        needed = None if aim is None else max(plans[aim], n + 1)
        verdicts.append(replace(v, kind=kind, seeds_needed=needed, resolves_as=aim))
    return verdicts
