"""Sequential seeds: looks at seed counts fixed in advance, with a group-sequential alpha-spending rule.

A study with ``study.max_seeds`` judges its comparisons after ``len(study.seeds)`` seeds, adds seeds only to the
unresolved ones, and judges again at each later look of :func:`look_schedule`. Looking k times at the full
alpha would inflate the false-positive rate; the spending rule (Lan & DeMets 1983) spends alpha over the looks
by the information fraction t = seeds / max_seeds, so that the chance of crossing at any look under the null
is alpha:

- ``obrien_fleming``: alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)): strict early, close to alpha at the last look;
- ``pocock``: alpha(t) = alpha ln(1 + (e - 1) t): evenly spent;
- ``bonferroni``: alpha / looks at every look (the previous rule, kept to compare against).

:func:`nominal_levels` turns the spending into a per-look two-sided p threshold (the boundaries of a z
statistic whose looks have correlation sqrt(t_i / t_j), integrated exactly on a grid). A comparison's
:func:`sequential_p` is the smallest total alpha whose boundary its look's p crosses; Holm over these across a
family is the graphical group-sequential Holm procedure (Maurer & Bretz 2013). The p of each look comes from
the study's test (t or sign flip); the z boundaries are exact for a normal statistic, and the family-wise rate
over all looks for the t-test is checked by simulation (scripts/simulate_verdicts.py, tests/test_stats.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import stats

from seg.study.rules import SPENDING, Rule

_GRID = 601


def spent(alpha: float, t: float, spending: str) -> float:
    """Cumulative alpha spent by information fraction t (0 < t <= 1)."""
    if spending == "obrien_fleming":
        return float(2 * stats.norm.sf(stats.norm.isf(alpha / 2) / math.sqrt(t)))
    if spending == "pocock":
        return alpha * math.log(1 + (math.e - 1) * t)
    raise ValueError(f"spending must be one of {SPENDING[:2]}, got {spending!r}")


_Z = np.linspace(-12, 12, _GRID)  # a look's z statistic on a grid, for the density of "no crossing so far"
_STEP = _Z[1] - _Z[0]


@lru_cache(maxsize=64)
def _kernel(ratio: float) -> np.ndarray:
    """(grid, grid) transition density of z_k = sqrt(ratio) z_{k-1} + sqrt(1 - ratio) e, times the grid step."""
    scale = math.sqrt(1 - ratio)
    return stats.norm.pdf((_Z[:, None] - math.sqrt(ratio) * _Z[None, :]) / scale) * _STEP / scale


@lru_cache(maxsize=4096)
def nominal_levels(alpha: float, schedule: tuple[int, ...], spending: str) -> tuple[float, ...]:
    """Two-sided p threshold at each look of ``schedule`` so that a null comparison crosses at some look with
    probability alpha (``bonferroni``: alpha / looks, which crosses with at most alpha). One look: (alpha,)."""
    if spending == "bonferroni" or len(schedule) == 1:
        return tuple([alpha / len(schedule)] * len(schedule))
    fractions = [n / schedule[-1] for n in schedule]
    levels, previous, density = [], 0.0, stats.norm.pdf(_Z)
    for k, t in enumerate(fractions):
        target = spent(alpha, t, spending) - previous
        previous += target
        if k == 0:
            crit = float(stats.norm.isf(target / 2))
        else:
            density = _kernel(round(fractions[k - 1] / t, 12)) @ density
            tail = (np.cumsum(density[::-1])[::-1] - density / 2) * _STEP  # P(no earlier crossing, z_k >= z)
            upper = _Z >= 0
            crit = float(np.interp(-target / 2, -tail[upper], _Z[upper])) if target > 0 else math.inf
        levels.append(max(float(2 * stats.norm.sf(crit)), 1e-300))
        density = density * np.clip((crit - np.abs(_Z)) / _STEP + 0.5, 0.0, 1.0)  # cells cut at the boundary
    return tuple(levels)


@lru_cache(maxsize=64)
def _level_table(schedule: tuple[int, ...], spending: str) -> tuple[np.ndarray, np.ndarray]:
    """log alpha on a grid up to 0.5 (no proper spending above it), and the log nominal level of each look."""
    alphas = np.geomspace(1e-7, 0.5, 400)
    return np.log(alphas), np.log([nominal_levels(float(a), schedule, spending) for a in alphas])


def sequential_p(p: float, look: int, schedule: Sequence[int], spending: str) -> float:
    """The smallest total alpha at which ``p`` crosses the boundary of look ``look`` (0-based); 1 beyond 0.5.

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
