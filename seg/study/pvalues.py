"""p-values of the paired seed tests, vectorised for simulations, and Holm's adjustment.

Both tests take the per-seed paired differences (arm - baseline) over the last axis and test the A/A null:
exchangeable arms, so that each difference is as likely to be +x as -x (symmetric about 0).

- ``"sign_flip"``: the exact two-sided sign-flip (permutation) test of their mean, over all 2**n flips. Exact
  under that null for any shape; its p-values are multiples of 2/2**n, so n seeds cannot give p below 2/2**n.
- ``"t"``: the two-sided paired Student t-test (one-sample t of the differences against 0), its p calibrated for
  light tails (:func:`light_tail_p`). Continuous p, so it uses the size of a consistent effect. Shown by
  simulation (scripts/simulate_verdicts.py) to stay at or below its level when a per-seed difference is that of
  two independent single-mode runs, light-tailed (uniform), heavy-tailed, skewed or now and then collapsing, and
  for the real sample's runs; not for two-mode runs at 3-4 seeds or for symmetric shapes no pair of runs has
  (uniform or +-c differences).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import optimize, stats

from seg.constants import TESTS

_CHUNK_ELEMENTS = 4_000_000
_MC_PERMUTATIONS = 10_000
EXACT_MAX_SEEDS = 14  # permutation_pvalue enumerates all 2**n sign flips up to here; Monte Carlo flips beyond


def check_test(test: str) -> None:
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")


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


LIGHT_TAIL_KURTOSIS = -0.6
"""The excess kurtosis the t-test's p is calibrated for: that of the difference of two independent uniform runs,
the lightest tails such a difference has when each run's result is symmetric and single-mode (a single-mode
symmetric distribution has excess kurtosis at least -1.2, the uniform's; a difference of two independent draws
half its run's)."""


def light_tail_p(p: np.ndarray | float, n: int) -> np.ndarray:
    """Student's two-sided p of a t statistic from n seeds -> its p when the differences' excess kurtosis is
    :data:`LIGHT_TAIL_KURTOSIS`, by the kurtosis term of the Edgeworth expansion of the t statistic (Hall, The
    Bootstrap and Edgeworth Expansion, 1992): P(|T| > x) grows by -k z (z^2 - 3) phi(z) / (6 n), z the normal
    quantile of p. Never lowered; the change is of order 1/n (Student p 0.0125 becomes 0.0173 at n = 3, 0.0154
    at n = 5, 0.0137 at n = 12).

    Light tails make Student's p too small (simulated: up to 0.057 at 0.05 for the difference of two uniform runs,
    and 0.09-0.10 for uniform differences at 3-5 seeds); heavier tails make it too large, so for normal or heavier
    differences this p is conservative (0.03-0.045 at 0.05).
    """
    p = np.asarray(p, dtype=float)
    z = stats.norm.isf(np.clip(p, 1e-300, 1.0) / 2)
    grow = -LIGHT_TAIL_KURTOSIS * z * (z**2 - 3) * stats.norm.pdf(z) / (6 * n)
    return np.minimum(1.0, p + np.maximum(grow, 0.0))


@functools.cache
def t_critical(n: int, level: float) -> float:
    """The |t| at which :func:`t_pvalues` of n seeds equals ``level`` (its rejection bound)."""
    df = n - 1
    student = float(stats.t.isf(level / 2, df))
    if float(light_tail_p(level, n)) <= level:  # levels above 0.083 (z < sqrt(3)): the calibration leaves p as it is
        return student
    return float(optimize.brentq(lambda x: float(light_tail_p(2 * stats.t.sf(x, df), n)) - level,
                                 student, 4 * student + 10, xtol=1e-10))  # fmt: skip


def t_pvalues(diffs: np.ndarray) -> np.ndarray:
    """Two-sided paired t-test p over the last axis, vectorised over the rest: Student's p calibrated for light
    tails by :func:`light_tail_p`.

    Differences without spread give 0 for a nonzero mean and 1 for a zero one (where scipy gives nan); one
    seed gives 1 (no spread to judge by).
    """
    d = np.asarray(diffs, dtype=float)
    n = d.shape[-1]
    if n < 2:
        return np.ones(d.shape[:-1])
    mean = d.mean(axis=-1)
    sd = d.std(axis=-1, ddof=1)
    flat = sd <= np.abs(mean) * 1e-12  # no spread beyond rounding
    safe_sd = np.where(flat, 1.0, sd)
    p = light_tail_p(2 * stats.t.sf(np.abs(mean) / safe_sd * np.sqrt(n), n - 1), n)
    return np.where(flat, np.where(mean == 0, 1.0, 0.0), p)


def pvalues(test: str, diffs: np.ndarray) -> np.ndarray:
    """p of ``test`` (one of :data:`TESTS`) over the last axis of ``diffs``."""
    check_test(test)
    return t_pvalues(diffs) if test == "t" else sign_flip_pvalues(diffs)


def permutation_pvalue(arm: np.ndarray, baseline: np.ndarray, seed: int = 0) -> float:
    """Two-sided paired sign-flip p of the mean difference via ``scipy.stats.permutation_test``.

    Exact (all 2**n flips) up to 14 seeds, 10,000 random flips beyond. One seed (scipy refuses it) gives 1.
    """
    if len(arm) < 2:
        return 1.0
    n_resamples = np.inf if len(arm) <= EXACT_MAX_SEEDS else _MC_PERMUTATIONS
    result = stats.permutation_test((arm, baseline), lambda x, y, axis=-1: np.mean(x - y, axis=axis),
                                    permutation_type="samples", vectorized=True, n_resamples=n_resamples,
                                    rng=np.random.default_rng(seed))  # fmt: skip
    return float(result.pvalue)


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


def holm_within(pvalues: np.ndarray, families: list[str]) -> np.ndarray:
    """Holm over the last axis separately within each family (``families[i]`` labels comparison i)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.empty_like(p)
    for family in dict.fromkeys(families):
        idx = np.array([i for i, f in enumerate(families) if f == family])
        out[..., idx] = holm(p[..., idx])
    return out
