"""Sequential seeds: looks at seed counts fixed in advance, with a group-sequential alpha-spending rule.

A study with ``study.max_seeds`` judges its comparisons after ``len(study.seeds)`` seeds, adds seeds only to the
unresolved ones, and judges again at each later look of :func:`look_schedule`. Looking k times at the full
alpha would inflate the false-positive rate; the spending rule (Lan & DeMets 1983) spends alpha over the looks
by the information fraction t = seeds / max_seeds, so that the chance of crossing at any look under the null
is alpha:

- ``obrien_fleming``: alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)): strict early, close to alpha at the last look;
- ``pocock``: alpha(t) = alpha ln(1 + (e - 1) t): evenly spent;
- ``bonferroni``: alpha / looks at every look (the previous rule, kept to compare against).

:func:`nominal_levels` turns the spending into a per-look two-sided p threshold: the alpha spent at that look,
alpha(t_k) - alpha(t_k-1). These add up to alpha, so by the union bound a null comparison crosses at some look
with probability <= alpha whatever its test and however its looks depend on each other. (The exact boundaries
of a z statistic, which count on that dependence and so allow a little more at later looks, crossed at 0.052 to
0.055 instead of 0.05 with the t-test at 3 or 5 seeds for the first look: 100,000 simulated normal nulls.)
A comparison's :func:`sequential_p` is the smallest total alpha whose level its look's p meets; Holm over these
across a family is the group-sequential Holm procedure (Maurer & Bretz 2013). The family-wise rate over all looks
is checked by simulation (scripts/simulate_verdicts.py, tests/test_stats.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import stats

from seg.constants import SPENDING
from seg.study.rules import Rule


def spent(alpha: float, t: float, spending: str) -> float:
    """Cumulative alpha spent by information fraction t (0 < t <= 1)."""
    if spending == "obrien_fleming":
        return float(2 * stats.norm.sf(stats.norm.isf(alpha / 2) / math.sqrt(t)))
    if spending == "pocock":
        return alpha * math.log(1 + (math.e - 1) * t)
    raise ValueError(f"spending must be one of {SPENDING[:2]}, got {spending!r}")


@lru_cache(maxsize=4096)
def nominal_levels(alpha: float, schedule: tuple[int, ...], spending: str) -> tuple[float, ...]:
    """Two-sided p threshold at each look of ``schedule``: the alpha the spending function spends there,
    alpha(t_k) - alpha(t_k-1) (``bonferroni``: alpha / looks). They add up to alpha, so a null comparison crosses
    at some look with probability <= alpha whatever the dependence between looks. One look: (alpha,)."""
    if spending == "bonferroni" or len(schedule) == 1:
        return tuple([alpha / len(schedule)] * len(schedule))
    cumulative = [spent(alpha, n / schedule[-1], spending) for n in schedule]
    return tuple(max(b - a, 1e-300) for a, b in zip([0.0, *cumulative], cumulative))


@lru_cache(maxsize=64)
def _level_table(schedule: tuple[int, ...], spending: str) -> tuple[np.ndarray, np.ndarray]:
    """log alpha on a grid up to 0.3, and the log nominal level of each look (non-decreasing in alpha there)."""
    alphas = np.geomspace(1e-7, 0.3, 400)
    return np.log(alphas), np.log([nominal_levels(float(a), schedule, spending) for a in alphas])


def sequential_p(p: float, look: int, schedule: Sequence[int], spending: str) -> float:
    """The smallest total alpha at which ``p`` crosses the boundary of look ``look`` (0-based); 1 beyond 0.3.

    Monotone in ``p`` (interpolated on a log grid of alphas, relative error < 1e-3); at one look it is ``p``
    itself. Holm over these p's across a family is the group-sequential step-down.
    """
    schedule = tuple(schedule)
    if len(schedule) == 1:
        return p
    if spending == "bonferroni":
        return min(1.0, p * len(schedule))
    log_alpha, log_levels = _level_table(schedule, spending)
    if p <= 0:
        return 0.0
    if math.log(p) > log_levels[-1, look]:
        return 1.0
    return float(np.exp(np.interp(math.log(p), log_levels[:, look], log_alpha)))


def final_look_alpha(rule: Rule) -> float:
    """The nominal two-sided p threshold of the rule's last look for one comparison (alpha with one look)."""
    return nominal_levels(rule.alpha, tuple(rule.schedule), rule.spending)[-1]


def look_index(n_seeds: int, schedule: Sequence[int]) -> int:
    """The look a comparison with ``n_seeds`` seeds is at: the last look of ``schedule`` not beyond it (0 if none)."""
    return max([0, *[k for k, s in enumerate(schedule) if s <= n_seeds]])


def next_seed_counts(unresolved: list[str], current: int, max_seeds: int, schedule: Sequence[int]) -> dict[str, int]:
    """Seed count to run next for each still unresolved comparison (by name): the next look of ``schedule``.

    Resolved comparisons stop. Nothing is returned once ``current`` has reached ``max_seeds``.
    """
    later = sorted(s for s in schedule if current < s <= max_seeds)
    if not later:
        return {}
    return dict.fromkeys(unresolved, later[0])
