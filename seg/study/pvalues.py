"""p-values of the paired seed tests, vectorised for simulations, and Holm's adjustment.

Both tests take the per-seed paired differences (arm - baseline) over the last axis and test the A/A null:
exchangeable arms, so that each difference is as likely to be +x as -x (symmetric about 0).

- ``"sign_flip"``: the exact two-sided sign-flip (permutation) test of their mean, over all 2**n flips. Exact
  under that null for any shape; its p-values are multiples of 2/2**n, so n seeds cannot give p below 2/2**n.
- ``"t"``: the two-sided paired Student t-test (one-sample t of the differences against 0). Continuous p, so it
  uses the size of a consistent effect; exact for normal differences, and shown by simulation
  (scripts/simulate_verdicts.py) to stay at or below its level when a difference is that of two independent
  runs with tails at least as heavy as a normal's (t with 3 df, lognormal, now and then collapsing); a little
  above it for the lightest-tailed runs (uniform: up to 0.057 at 0.05), well above it for two-mode runs at 3
  seeds and for symmetric shapes no pair of runs has (uniform or +-c differences).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

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


def t_pvalues(diffs: np.ndarray) -> np.ndarray:
    """Two-sided paired t-test p over the last axis, vectorised over the rest.

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
    p = 2 * stats.t.sf(np.abs(mean) / safe_sd * np.sqrt(n), n - 1)
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
