"""Verdicts of paired seed comparisons (seg.study.stats): error rates by simulation, exactness, Holm, sequential looks.

The simulations use the numpy fast path (``sign_flip_pvalues`` + ``holm``, whose ``<= alpha`` is judge's
"difference" rule); ``test_fast_path_matches_scipy`` and ``test_judge_agrees_with_fast_path`` tie it to the
scipy path that ``judge`` runs. Rate bounds: with 1,000 studies the binomial sd of a 5% rate is 0.0069, so
0.065 is 2.2 sd above the nominal level (and the exact tests sit below it).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from seg.study.stats import (
    Comparison,
    Verdict,
    hierarchical_ci,
    holm,
    judge,
    look_schedule,
    looks_alpha,
    min_seeds_for_sign_flip,
    next_seed_counts,
    permutation_pvalue,
    predictive_superiority,
    seeds_to_resolve,
    sign_flip_pvalues,
)

N_STUDIES = 1000
RATE_BOUND = 0.065


def _studies(rng: np.random.Generator, n_studies: int, m: int, n: int, effect: float = 0.0) -> np.ndarray:
    """Paired per-seed Dice differences (studies, m, n): a seed effect shared by both arms cancels in the
    difference; each arm adds its own noise (sd 0.005), the arm shifted by ``effect``."""
    seed_effect = rng.normal(0.0, 0.01, size=(n_studies, m, n))
    arm = 0.92 + seed_effect + rng.normal(effect, 0.005, size=seed_effect.shape)
    baseline = 0.92 + seed_effect + rng.normal(0.0, 0.005, size=seed_effect.shape)
    return arm - baseline


def _difference_rate(diffs: np.ndarray, alpha: float) -> float:
    """Share of studies (axis 0) where judge's rule calls at least one of the m comparisons a difference."""
    return float(np.mean((holm(sign_flip_pvalues(diffs)) <= alpha).any(axis=-1)))


def test_min_seeds_for_sign_flip() -> None:
    assert min_seeds_for_sign_flip(0.05) == 6
    assert min_seeds_for_sign_flip(0.25) == 3
    assert min_seeds_for_sign_flip(0.0625) == 5
    assert min_seeds_for_sign_flip(0.05 / 3) == 7


def test_fast_path_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    for n in range(1, 11):
        for i in range(12):
            arm, baseline = rng.normal(size=n), rng.normal(size=n)
            if i % 3 == 0:  # ties in |difference| and zero differences
                arm, baseline = np.round(arm, 1), np.round(baseline, 1)
            assert sign_flip_pvalues(arm - baseline) == permutation_pvalue(arm, baseline)


@pytest.mark.parametrize(("n_seeds", "m"), [(6, 1), (10, 3)])
def test_aa_false_difference_rate(n_seeds: int, m: int) -> None:
    rate = _difference_rate(_studies(np.random.default_rng(n_seeds), N_STUDIES, m, n_seeds), 0.05)
    assert rate <= RATE_BOUND


def test_judge_agrees_with_fast_path() -> None:
    diffs = _studies(np.random.default_rng(1), 4, 3, 10, effect=0.006)
    fast = holm(sign_flip_pvalues(diffs)) <= 0.05
    for study, flags in zip(diffs, fast):
        verdicts = judge([Comparison(f"c{i}", d, np.zeros_like(d)) for i, d in enumerate(study)], 0.001,
                         n_resamples=200)
        assert [v.p_value for v in verdicts] == list(sign_flip_pvalues(study))
        assert [v.kind == "difference" for v in verdicts] == list(flags)


@pytest.mark.parametrize("m", [1, 3])
def test_power_at_seeds_needed(m: int) -> None:
    pilot = np.random.default_rng(2).normal(size=6)
    pilot = (pilot - pilot.mean()) / pilot.std(ddof=1) + 1.0  # observed d exactly 1
    n = seeds_to_resolve(pilot, 0.05 / m)
    assert n is not None and min_seeds_for_sign_flip(0.05 / m) <= n <= 16
    diffs = np.random.default_rng(3).normal(1.0, 1.0, size=(N_STUDIES, m, n))
    power = float(np.mean(holm(sign_flip_pvalues(diffs)) <= 0.05))  # per comparison
    assert 0.7 <= power <= 0.95


def test_three_agreeing_seeds_are_unresolved() -> None:
    (v,) = judge([Comparison("aug", np.array([0.93, 0.925, 0.931]), np.array([0.92, 0.921, 0.915]))], 0.001)
    assert v.p_value == pytest.approx(0.25) and v.p_holm >= 0.25
    assert v.kind == "unresolved" and v.seeds_needed is not None and v.seeds_needed >= 6
    assert "cannot give p below 0.25" in v.sentence() and "significant" not in v.sentence()


def test_clear_difference_and_clear_equivalence() -> None:
    rng = np.random.default_rng(4)
    base = 0.92 + rng.normal(0, 0.01, 8)
    big, same = judge([Comparison("big", base + 0.02 + rng.normal(0, 0.002, 8), base),
                       Comparison("same", base + rng.normal(0, 0.0005, 8), base)], margin=0.005)
    assert big.kind == "difference" and big.p_value == pytest.approx(2 / 2**8)
    assert big.ci_seeds[0] > 0.015 and big.p_superior > 0.99 and big.seeds_needed is None
    assert "significant" in big.sentence() and "+0.02" in big.sentence()
    assert same.kind == "no difference" and -0.005 < same.ci_seeds[0] < same.ci_seeds[1] < 0.005
    assert "significant" not in same.sentence() and "no difference beyond ±0.005" in same.sentence()


def test_tiny_effect_gives_no_seed_count() -> None:
    diffs = np.array([0.01, -0.012, 0.009, -0.008, 0.011, -0.0095])
    assert seeds_to_resolve(diffs, 0.05) is None
    (v,) = judge([Comparison("tiny", diffs, np.zeros(6))], margin=0.05)
    assert v.kind == "no difference"
    (v,) = judge([Comparison("tiny", diffs, np.zeros(6))], margin=0.002)
    assert v.kind == "unresolved" and v.seeds_needed is None and "too small" in v.sentence()


@pytest.mark.parametrize("n", [1, 2])
def test_too_few_seeds_no_crash_no_warnings(n: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = np.full((n, 5), 0.9)
        arm, baseline = np.array([0.93, 0.925])[:n], np.full(n, 0.92)
        (v,) = judge([Comparison("few", arm, baseline, images + 0.01, images)], margin=1.0)
        text = v.sentence()
    assert v.kind == "unresolved" and v.n_seeds == n and v.p_value == 2 / 2**n
    assert all(math.isnan(x) for x in (*v.ci_seeds, *v.ci_hierarchical))
    assert math.isnan(v.p_superior) == (n == 1)
    assert "no CI" in text and "significant" not in text


def test_zero_spread_is_handled() -> None:
    (v,) = judge([Comparison("flat", np.full(6, 0.93), np.full(6, 0.92))], margin=0.001)
    assert v.kind == "difference" and v.ci_seeds == pytest.approx((0.01, 0.01)) and v.p_superior == 1.0
    assert seeds_to_resolve(np.full(4, 0.01), 0.05) == 6


def test_hierarchical_ci_wider_than_pooled_images() -> None:
    rng = np.random.default_rng(5)
    n_seeds, n_images = 6, 300
    per_seed = rng.normal(0.005, 0.01, size=(n_seeds, 1))  # seeds differ in how much the arm helps
    baseline = rng.uniform(0.7, 1.0, size=(n_seeds, n_images))
    arm = baseline + per_seed + rng.normal(0, 0.03, size=(n_seeds, n_images))
    low, high = hierarchical_ci(arm, baseline)
    pooled = (arm - baseline).ravel()
    naive = np.quantile(rng.choice(pooled, size=(2000, pooled.size)).mean(axis=1), [0.025, 0.975])
    assert high - low > 2 * (naive[1] - naive[0])
    assert low < (arm - baseline).mean() < high
    (v,) = judge([Comparison("img", arm.mean(axis=1), baseline.mean(axis=1), arm, baseline)], margin=0.001)
    assert v.ci_hierarchical == (low, high)


def test_holm_hand_worked() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02 0.03 0.06 0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm(np.array([0.5, 0.9])), [1.0, 1.0])


def test_judge_holm_is_monotone_and_above_raw() -> None:
    rng = np.random.default_rng(6)
    comps = [Comparison(f"c{i}", rng.normal(0.92 + 0.004 * i, 0.005, 8), rng.normal(0.92, 0.005, 8)) for i in range(5)]
    verdicts = judge(comps, margin=0.001, n_resamples=200)
    raw, adjusted = np.array([v.p_value for v in verdicts]), np.array([v.p_holm for v in verdicts])
    assert np.all(adjusted >= raw)
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= 0)
    np.testing.assert_allclose(adjusted, holm(raw))


def test_predictive_superiority() -> None:
    assert predictive_superiority(np.array([0.01, -0.01, 0.02, -0.02])) == pytest.approx(0.5)
    large = np.random.default_rng(7).normal(0.5, 1.0, size=400)
    assert predictive_superiority(large) == pytest.approx(0.69, abs=0.04)  # Phi(0.5) for a known normal
    assert predictive_superiority(np.array([0.02, 0.01, 0.03])) > 0.8


def test_sequential_two_looks_keep_family_wise_rate() -> None:
    """A/A, 2 comparisons, looks at 8 and 12 seeds, alpha/2 per look; every comparison not yet called a
    difference goes on to the second look (the worst case: equivalence verdicts would stop some earlier)."""
    schedule = look_schedule(8, 12, 2)
    assert schedule == [8, 12]
    level = looks_alpha(0.05, len(schedule))
    diffs = _studies(np.random.default_rng(8), N_STUDIES, 2, schedule[-1])
    first, full = sign_flip_pvalues(diffs[..., : schedule[0]]), sign_flip_pvalues(diffs)
    rate = float(np.mean(((holm(first) <= level) | (holm(full) <= level)).any(axis=-1)))
    assert rate <= RATE_BOUND
    naive = float(np.mean(((holm(first) <= 0.05) | (holm(full) <= 0.05)).any(axis=-1)))
    assert naive > RATE_BOUND  # two looks at the full alpha do inflate it


def _verdict(name: str, kind: str, needed: int | None = None) -> Verdict:
    return Verdict(name, kind, 6, 0.0, (0.0, 0.0), None, 0.5, 0.5, 0.5, needed, 0.01)


def test_next_seed_counts() -> None:
    verdicts = [_verdict("a", "difference"), _verdict("b", "unresolved", 14), _verdict("c", "no difference"),
                _verdict("d", "unresolved")]
    assert next_seed_counts(verdicts, 6, 12) == {"b": 12, "d": 12}
    assert next_seed_counts(verdicts, 6, 20, schedule=look_schedule(6, 20, 3)) == {"b": 13, "d": 13}
    assert next_seed_counts(verdicts, 12, 12) == {}
    assert looks_alpha(0.05, 1) == 0.05 and looks_alpha(0.05, 2) == 0.025


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        judge([Comparison("x", np.ones(3), np.ones(4))], margin=0.01)
    with pytest.raises(ValueError):
        judge([Comparison("x", np.ones(3), np.ones(3), np.ones((3, 4)), np.ones((3, 5)))], margin=0.01)
