"""Verdicts for ablation comparisons over paired seeds, so that a report never dresses noise as a finding.

A :class:`Comparison` is one arm against its baseline within a stratum, paired by seed (seed s of both arms
shares data order and initialisation), optionally with per-image results on the same test images.
:func:`judge` gives each comparison one of three verdicts:

- ``"difference"``: the exact two-sided sign-flip permutation p over the seeds, Holm-adjusted across all
  comparisons passed together, is <= alpha. With n seeds that p cannot fall below 2/2**n, so 3 seeds never
  give a difference (:func:`min_seeds_for_sign_flip`).
- ``"no difference"``: not a difference, at least 3 seeds, and the equivalence interval (the hull of the
  paired seed-bootstrap CI and the Student-t CI; the bootstrap alone is too narrow with few seeds) lies
  strictly inside (-margin, +margin).
- ``"unresolved"``: anything else, with the seeds that would resolve it (:func:`seeds_to_resolve`).

CIs have level 1 - alpha (95% at the default alpha), so the sequential design's per-look alpha
(:func:`looks_alpha`) also widens the equivalence CIs. Equivalence is not adjusted for multiplicity: a
two-sided 1 - alpha CI inside the margin is a TOST at alpha/2 per comparison. Metrics are higher-is-better.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

MIN_SEEDS_FOR_CI = 3  # fewer seeds: no CI and no equivalence verdict
EXACT_MAX_SEEDS = 14  # judge enumerates all 2**n sign flips up to here; Monte Carlo flips beyond
_MC_PERMUTATIONS = 10_000
_SIM_MAX_SEEDS = 12
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
    ci_seeds: tuple[float, float]  # 1 - alpha paired BCa bootstrap CI over seeds; (nan, nan) under 3 seeds
    ci_hierarchical: tuple[float, float] | None  # seeds-then-images bootstrap; None without per-image data
    p_value: float  # exact two-sided sign-flip permutation p over the seeds
    p_holm: float  # Holm-adjusted over the comparisons judged together
    p_superior: float  # P(arm > baseline on a new seed), Student-t posterior predictive
    seeds_needed: int | None  # unresolved: total seeds for 80% power; None: over 100, or not unresolved
    margin: float
    alpha: float = 0.05
    sd_diff: float = math.nan  # sd (ddof=1) of the paired differences

    @property
    def ci_equivalence(self) -> tuple[float, float]:
        """The interval the equivalence rule uses: hull of the seed-bootstrap CI and the Student-t CI."""
        if self.n_seeds < MIN_SEEDS_FOR_CI:
            return _NAN_PAIR
        half = float(stats.t.ppf(1 - self.alpha / 2, self.n_seeds - 1)) * self.sd_diff / math.sqrt(self.n_seeds)
        return min(self.ci_seeds[0], self.mean_diff - half), max(self.ci_seeds[1], self.mean_diff + half)

    def sentence(self) -> str:
        """One plain line for report.md: what was found, its size and CI, the p-values and what would resolve it."""
        level = f"{100 * (1 - self.alpha):g}%"
        ci = "no CI from under 3 seeds" if math.isnan(self.ci_seeds[0]) else f"{level} CI {_fmt_ci(self.ci_seeds)}"
        if self.ci_hierarchical is not None and not math.isnan(self.ci_hierarchical[0]):
            ci += f", seeds-then-images CI {_fmt_ci(self.ci_hierarchical)}"
        size = f"mean difference {self.mean_diff:+.4f} ({ci}) over {self.n_seeds} seed{'s' * (self.n_seeds > 1)}"
        p = f"sign-flip p = {self.p_value:.3g}, Holm-adjusted {self.p_holm:.3g}"
        if self.kind == "difference":
            return (f"{self.name}: difference, {size}; significant at alpha {self.alpha:g} ({p}); "
                    f"the arm beats the baseline on a new seed with probability {self.p_superior:.2f}.")
        if self.kind == "no difference":
            return (f"{self.name}: no difference beyond ±{self.margin:g}: {size}; {p}; the {level} equivalence "
                    f"interval {_fmt_ci(self.ci_equivalence)} lies inside the margin.")
        if self.seeds_needed is not None:
            advice = f"about {self.seeds_needed} seeds would resolve it at the spread seen (80% power)"
        elif self.n_seeds < 2:
            advice = f"one seed shows no spread; run at least {min_seeds_for_sign_flip(self.alpha)} seeds"
        else:
            advice = "the effect is too small against the seed spread for 100 seeds to show a difference"
            low, high = self.ci_equivalence
            if high - low < 2 * self.margin:
                advice += f"; the CI is narrow, so more seeds may show it lies within ±{self.margin:g}"
        floor = 2.0 / 2**self.n_seeds
        limit = f" ({self.n_seeds} seeds cannot give p below {floor:.3g})" if 1 > floor > self.alpha else ""
        return f"{self.name}: unresolved, {size}; {p}{limit}; {advice}."


def _fmt_ci(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def _paired_mean(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def min_seeds_for_sign_flip(alpha: float) -> int:
    """Smallest n with 2/2**n <= alpha: below it the exact two-sided sign-flip test cannot reach alpha."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    n = 1
    while 2.0 / 2**n > alpha:
        n += 1
    return n


def sign_flip_pvalues(diffs: np.ndarray) -> np.ndarray:
    """Exact two-sided sign-flip p of the mean over the last axis (all 2**n flips), vectorised over the rest.

    A fast path for simulations, equal to ``scipy.stats.permutation_test`` (same tie tolerance); n <= 16.
    """
    d = np.asarray(diffs, dtype=float)
    n = d.shape[-1]
    if not 1 <= n <= 16:
        raise ValueError(f"exact sign flips need 1..16 seeds, got {n}")
    flips = 1.0 - 2.0 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    rows = d.reshape(-1, n)
    observed = rows.mean(axis=1)
    gamma = np.abs(observed) * np.finfo(float).eps * 100
    out = np.empty(len(rows))
    step = max(1, _CHUNK_ELEMENTS // 2**n)
    for i in range(0, len(rows), step):
        null = rows[i : i + step] @ flips.T / n
        obs, tol = observed[i : i + step, None], gamma[i : i + step, None]
        less, greater = (null <= obs + tol).mean(axis=1), (null >= obs - tol).mean(axis=1)
        out[i : i + step] = np.minimum(1.0, 2 * np.minimum(less, greater))
    return out.reshape(d.shape[:-1])


def permutation_pvalue(arm: np.ndarray, baseline: np.ndarray, seed: int = 0) -> float:
    """Two-sided paired sign-flip p of the mean difference via ``scipy.stats.permutation_test``.

    Exact (all 2**n flips) up to 14 seeds, 10,000 random flips beyond. One seed (scipy refuses it) gives 1.
    """
    if len(arm) < 2:
        return 1.0
    n_resamples = np.inf if len(arm) <= EXACT_MAX_SEEDS else _MC_PERMUTATIONS
    result = stats.permutation_test((arm, baseline), _paired_mean, permutation_type="samples", vectorized=True,
                                    n_resamples=n_resamples, rng=np.random.default_rng(seed))
    return float(result.pvalue)


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


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values over the last axis: max over j <= i of (m - j + 1) p_(j), capped at 1."""
    p = np.asarray(pvalues, dtype=float)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
    adjusted = np.minimum(1.0, np.maximum.accumulate(ranked, axis=-1))
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return out


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


def _t_power(d: float, n: int, level: float) -> float:
    """Noncentral-t power of the paired t-test at the level the exact sign-flip test attains with 2**n flips."""
    half = 2.0 ** (n - 1)
    if n < 2 or level * half < 1:
        return 0.0
    if math.isinf(d):
        return 1.0
    crit, nc = stats.t.ppf(1 - math.floor(level * half) / half / 2, n - 1), abs(d) * math.sqrt(n)
    return float(stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc))


def sign_flip_power(d: float, n: int, level: float, n_sims: int = 2000, seed: int = 0) -> float:
    """Power of the exact two-sided sign-flip test with n seeds at standardized effect d (normal differences).

    Up to 12 seeds, where the test's discreteness matters most, a seeded Monte Carlo of the exact test itself
    (``n_sims`` studies); beyond, the noncentral-t power of the paired t-test at the level the exact test
    attains (its p-values are multiples of 2/2**n), which agrees with simulation there.
    """
    if n > _SIM_MAX_SEEDS or math.isinf(d) or _t_power(d, n, level) == 0:
        return _t_power(d, n, level)
    sims = np.random.default_rng(seed).standard_normal((n_sims, n)) + abs(d)
    return float(np.mean(sign_flip_pvalues(sims) <= level))


def seeds_to_resolve(diffs: np.ndarray, alpha: float, power: float = 0.8, max_seeds: int = 100) -> int | None:
    """Total seeds at which the exact sign-flip test at level alpha reaches ``power`` for the effect seen.

    The effect is d = mean / sd of the paired differences (sd with ddof=1) and the power
    :func:`sign_flip_power`, simulated only where the cheap t approximation is within 0.1 of ``power`` (it
    overrates the exact test at small n, never underrates it by that much). At least
    :func:`min_seeds_for_sign_flip` (alpha). None when more than ``max_seeds`` would be needed (an effect
    near 0) or the spread is unknown (one seed).
    """
    d_arr = np.asarray(diffs, dtype=float)
    if len(d_arr) < 2 or d_arr.mean() == 0:
        return None
    sd = float(d_arr.std(ddof=1))
    d = float(d_arr.mean()) / sd if sd > 0 else math.inf
    for n in range(max(2, min_seeds_for_sign_flip(alpha)), max_seeds + 1):
        if _t_power(d, n, alpha) >= power - 0.1 and sign_flip_power(d, n, alpha) >= power:
            return n
    return None


def judge(comparisons: list[Comparison], margin: float, alpha: float = 0.05, n_resamples: int = 2000,
          seed: int = 0) -> list[Verdict]:
    """Verdicts for comparisons judged together (one Holm family), in the same order.

    ``margin`` (> 0, metric units) is the largest difference that counts as none. CIs have level 1 - alpha.
    ``seeds_needed`` (unresolved only) plans for the Holm worst case alpha / m and is at least one more
    seed than was run.
    """
    if margin < 0 or not 0 < alpha < 1:
        raise ValueError(f"need margin >= 0 and 0 < alpha < 1, got {margin}, {alpha}")
    level, m = 1 - alpha, len(comparisons)
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
        rows.append((c.name, diffs, bootstrap_ci(arm, base, level, n_resamples, seed), hier,
                     permutation_pvalue(arm, base, seed)))
    p_holm = holm(np.array([row[4] for row in rows])) if rows else np.array([])
    verdicts = []
    for (name, diffs, ci, hier, p), ph in zip(rows, p_holm):
        n = len(diffs)
        v = Verdict(name, "unresolved", n, float(diffs.mean()), ci, hier, p, float(ph), predictive_superiority(diffs),
                    None, margin, alpha, float(diffs.std(ddof=1)) if n > 1 else math.nan)
        low, high = v.ci_equivalence
        equivalent = n >= MIN_SEEDS_FOR_CI and -margin < low and high < margin
        kind = "difference" if v.p_holm <= alpha else "no difference" if equivalent else "unresolved"
        needed = seeds_to_resolve(diffs, alpha / m) if kind == "unresolved" else None
        verdicts.append(replace(v, kind=kind, seeds_needed=None if needed is None else max(needed, n + 1)))
    return verdicts


def looks_alpha(alpha: float, n_looks: int) -> float:
    """Per-look alpha for a sequential study with at most ``n_looks`` looks: Bonferroni over looks, alpha / n_looks.

    Valid when the seed counts of the looks are fixed in advance (:func:`look_schedule`) and every look
    judges the full list of comparisons (so Holm's m never shrinks).
    """
    if n_looks < 1:
        raise ValueError(f"n_looks must be >= 1, got {n_looks}")
    return alpha / n_looks


def look_schedule(first: int, max_seeds: int, n_looks: int) -> list[int]:
    """Seed counts at each look, fixed in advance: evenly spaced from ``first`` to ``max_seeds``."""
    if n_looks < 2 or max_seeds <= first:
        return [first]
    return sorted({round(first + (max_seeds - first) * k / (n_looks - 1)) for k in range(n_looks)})


def next_seed_counts(verdicts: list[Verdict], current: int, max_seeds: int,
                     schedule: Sequence[int] | None = None) -> dict[str, int]:
    """Seed count to run next for each still unresolved comparison: the next look of ``schedule``, else the cap.

    Resolved comparisons stop. Nothing is returned once ``current`` has reached ``max_seeds``.
    """
    later = sorted(s for s in (schedule or [max_seeds]) if current < s <= max_seeds)
    if not later:
        return {}
    return {v.name: later[0] for v in verdicts if v.kind == "unresolved"}
