"""optuna_trials.png: the trial values of a search and each numeric parameter against the value."""

from __future__ import annotations

from collections.abc import Callable
from itertools import accumulate
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from optuna.distributions import CategoricalDistribution, LogUniformDistribution  # noqa: E402
from optuna.study import StudyDirection  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

# How each trial state is drawn: (label, marker, face colour); pruned trials at their last reported value.
STYLES = {
    TrialState.COMPLETE: ("complete", "o", "tab:blue"),
    TrialState.PRUNED: ("pruned (last epoch reported)", "o", "none"),
}


def plot_search(trials: list[FrozenTrial], direction: StudyDirection, path: Path) -> None:
    """Left: value per trial with the best so far; then one scatter per numeric parameter (log axis for
    log-uniform ones, e.g. lr). Failed trials are marked on the trial axis at the bottom."""
    params = sorted(
        {n for t in trials for n, d in t.distributions.items() if not isinstance(d, CategoricalDistribution)}
    )
    fig, axes = plt.subplots(1, 1 + len(params), figsize=(5 * (1 + len(params)), 4), squeeze=False)
    ax = axes[0, 0]
    _scatter(ax, trials, lambda t: t.number)
    failed = [t.number for t in trials if t.state == TrialState.FAIL]
    if failed:
        ax.scatter(failed, [0.0] * len(failed), marker="x", color="tab:red", label="failed")
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)
    pick = max if direction == StudyDirection.MAXIMIZE else min
    best = list(accumulate((t.value for t in complete), pick))
    ax.step([t.number for t in complete], best, where="post", color="tab:orange", label="best so far")
    ax.set(title="Trials", xlabel="trial", ylabel="best val Dice")
    for ax, name in zip(axes[0, 1:], params):
        _scatter(ax, [t for t in trials if name in t.params], lambda t, name=name: t.params[name])
        log_scale = any(isinstance(t.distributions.get(name), LogUniformDistribution) for t in trials)
        ax.set(
            title=f"{name} vs val Dice", xlabel=name, ylabel="best val Dice", xscale="log" if log_scale else "linear"
        )
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _scatter(ax: plt.Axes, trials: list[FrozenTrial], x: Callable[[FrozenTrial], float]) -> None:
    """Complete and pruned trials' values against `x(trial)`, in the styles of STYLES."""
    for state, (label, marker, face) in STYLES.items():
        shown = [t for t in trials if t.state == state and t.value is not None]
        if shown:
            ax.scatter(
                [x(t) for t in shown],
                [t.value for t in shown],
                marker=marker,
                facecolors=face,
                edgecolors="tab:blue",
                label=label,
            )
