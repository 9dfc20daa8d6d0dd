"""Power of the paired seed tests, and the seeds a comparison needs: the planner's arithmetic (seg.study.stats).

An effect is standardised as d = mean paired difference / its sd across seeds (ddof=1). ``test`` is one of
seg.study.pvalues.TESTS: ``"t"`` (paired Student t over the per-seed differences) or ``"sign_flip"`` (the exact
two-sided sign-flip test of their mean, whose p-values are multiples of 2/2**n).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import stats

from seg.study.pvalues import check_test, sign_flip_pvalues, t_critical

MIN_SEEDS_FOR_CI = 3  # fewer seeds: no CI, no equivalence verdict, and the t-test is not used to call a difference
_SIM_MAX_SEEDS = 12
_CHI2_NODES = 2000


def min_seeds_for_sign_flip(alpha: float) -> int:
    """Smallest n with 2/2**n <= alpha: below it the exact two-sided sign-flip test cannot reach alpha."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    n = 1
    while 2.0 / 2**n > alpha:
        n += 1
    return n


def min_seeds(test: str, alpha: float) -> int:
    """The fewest seeds at which ``test`` can call a difference at level ``alpha``."""
    check_test(test)
    return max(MIN_SEEDS_FOR_CI, min_seeds_for_sign_flip(alpha)) if test == "sign_flip" else MIN_SEEDS_FOR_CI


def t_power(d: float, n: int, level: float, calibrated: bool = True) -> float:
    """Power of the two-sided paired t-test with n seeds at standardised effect d and level ``level``, for normal
    differences: the study's t-test (seg.study.pvalues.t_pvalues, ``calibrated``) or Student's.

    The noncentral t tail written as an average over the chi-square of the sd estimate,
    P(|Z + d sqrt(n)| > c sqrt(V / df)) with V ~ chi2(df), on ``_CHI2_NODES`` quantile midpoints: finite for
    any d (scipy's ``nct`` overflows to nan for large noncentrality) and non-decreasing in |d|.
    """
    if n < 2 or level <= 0:
        return 0.0
    if math.isinf(d):
        return 1.0
    df = n - 1
    level = min(level, 1.0)
    crit = t_critical(n, level) if calibrated and level < 1 else stats.t.isf(level / 2, df)
    scale = crit * _sd_ratios(df)
    nc = abs(d) * math.sqrt(n)
    return float(np.mean(stats.norm.sf(scale - nc) + stats.norm.cdf(-scale - nc)))


@functools.cache
def _sd_ratios(df: int) -> np.ndarray:
    """sqrt(V / df), V ~ chi2(df), on ``_CHI2_NODES`` quantile midpoints: the sd estimate over the true sd, the
    nodes t_power and equivalence_power average over (computed once per df: the seed planners loop over n)."""
    ratios = np.sqrt(stats.chi2.ppf((np.arange(_CHI2_NODES) + 0.5) / _CHI2_NODES, df) / df)
    ratios.setflags(write=False)  # shared by every call
    return ratios


def sign_flip_level(n: int, level: float) -> float:
    """The largest level <= ``level`` the exact sign-flip test attains with n seeds (a multiple of 2/2**n)."""
    half = 2.0 ** (n - 1)
    return math.floor(level * half) / half


def power(test: str, d: float, n: int, level: float, n_sims: int = 2000, seed: int = 0) -> float:
    """Power of ``test`` with n seeds at standardised effect d (normal differences).

    The t-test: :func:`t_power` (exact for normal differences). The sign-flip test: up to 12 seeds, where its
    discreteness matters most, a seeded Monte Carlo of the exact test itself (``n_sims`` studies, the same
    draws for every d so the estimate is monotone in d); beyond, the t power at the level the exact test attains.
    """
    check_test(test)
    if test == "t":
        return t_power(d, n, level)
    attained = sign_flip_level(n, level)
    if attained <= 0 or n > _SIM_MAX_SEEDS or math.isinf(d):
        return t_power(d, n, attained, calibrated=False)
    sims = np.random.default_rng(seed).standard_normal((n_sims, n)) + abs(d)
    return float(np.mean(sign_flip_pvalues(sims) <= level))


def seeds_needed(test: str, d: float, alpha: float, target: float = 0.8, max_seeds: int = 100) -> int | None:
    """The fewest seeds (at least :func:`min_seeds`) at which ``test`` at level ``alpha`` reaches ``target``
    power for effect d; None above ``max_seeds``. Non-increasing in |d|: power grows with |d| at every n.

    For the sign-flip test the Monte Carlo power is run only where the t power at the attained level is within
    0.1 of the target (it overrates the exact test at small n, never underrates it by that much).
    """
    if d == 0 or math.isnan(d):
        return None
    for n in range(min_seeds(test, alpha), max_seeds + 1):
        if test == "t" and t_power(d, n, alpha) >= target:
            return n
        if (test == "sign_flip" and t_power(d, n, sign_flip_level(n, alpha), calibrated=False) >= target - 0.1
                and power(test, d, n, alpha) >= target):
            return n
    return None


def effect_size(diffs: np.ndarray) -> float:
    """d = mean / sd (ddof=1) of the paired differences: inf for a nonzero mean without spread, nan under 2 seeds."""
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2:
        return math.nan
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        return math.copysign(math.inf, mean) if mean else 0.0
    return mean / sd


def seeds_to_resolve(diffs: np.ndarray, alpha: float, test: str, target: float = 0.8,
                     max_seeds: int = 100) -> int | None:
    """Total seeds at which ``test`` at level ``alpha`` reaches ``target`` power for the effect seen in ``diffs``
    (:func:`effect_size`); None when more than ``max_seeds`` would be needed (an effect near 0) or the spread is
    unknown (one seed)."""
    return seeds_needed(test, effect_size(diffs), alpha, target, max_seeds)


def equivalence_power(d: float, e: float, n: int, level: float) -> float:
    """P(the Student-t interval of level ``level`` from n seeds lies strictly inside (-margin, +margin)), for
    normal differences with mean d and margin e, both in units of their sd (the "no difference" verdict's
    chance). Averaged over the chi-square of the sd estimate like :func:`t_power`; 0 when |d| >= e would make
    it at most a coin toss that vanishes with n."""
    if n < MIN_SEEDS_FOR_CI or not e > 0 or math.isnan(d):
        return 0.0
    df = n - 1
    half = stats.t.ppf(0.5 + level / 2, df) * _sd_ratios(df) / math.sqrt(n)
    room = np.maximum(e - half, 0.0)  # how far the mean estimate may fall from 0, for each sd estimate
    inside = stats.norm.cdf((room - d) * math.sqrt(n)) - stats.norm.cdf((-room - d) * math.sqrt(n))
    return float(np.mean(np.where(room > 0, inside, 0.0)))


def seeds_to_equivalence(diffs: np.ndarray, margin: float, level: float, target: float = 0.8,
                         max_seeds: int = 100) -> int | None:
    """Total seeds at which the interval of the mean difference (level ``level``, Student t) falls inside
    ± ``margin`` with probability ``target``, at the mean and sd seen in ``diffs``: the seeds for a "no
    difference" verdict. None when more than ``max_seeds`` would be needed (a mean near or beyond the margin),
    under 2 seeds, or without a margin."""
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2 or not margin > 0:
        return None
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        return MIN_SEEDS_FOR_CI if abs(mean) < margin else None
    if abs(mean) >= margin:
        return None
    for n in range(MIN_SEEDS_FOR_CI, max_seeds + 1):
        if equivalence_power(mean / sd, margin / sd, n, level) >= target:
            return n
    return None
