"""A search's plots over all trials of its study, fit for a meeting; Optuna 2.10's own matplotlib visualisations
where they do the job, with the pruned trials added and marked:

- optuna_history.png: val Dice per trial and the best so far (Optuna's), pruned trials as crosses at the last val
  Dice they reached;
- optuna_slice.png: each searched parameter against val Dice (Optuna's; a log-scaled parameter on a log axis),
  pruned trials as crosses;
- optuna_intermediate_values.png: val Dice per epoch, one line per trial: completed trials solid, pruned ones
  dashed ending in a cross where they stopped (a trial pruned after one epoch is a cross, never an invisible dot),
  the best trial highlighted, the y range fitted to the data;
- optuna_parallel_coordinate.png: the searched parameters of every completed trial against val Dice (Optuna's);
- optuna_importances.png: each parameter's share of the importance for val Dice, by Optuna's mean decrease in
  impurity evaluator (a random forest of scikit-learn, a dependency of seg; Optuna 2.10's default fANOVA evaluator
  fails on NumPy 2); left out, with a log line, with fewer than 2 parameters or 3 completed trials, or when
  the completed trials' val Dice are all equal.

A plot that fails is left out with a warning: the search's results never depend on its pictures.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402
from optuna.distributions import LogUniformDistribution  # noqa: E402
from optuna.importance import MeanDecreaseImpurityImportanceEvaluator  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402
from optuna.visualization import matplotlib as optuna_plots  # noqa: E402

from seg.files import save_figure  # noqa: E402

log = logging.getLogger(__name__)

METRIC = "val Dice"
BLUE, ORANGE, GRAY, RED = "#0072B2", "#E69F00", "0.55", "#D55E00"  # Okabe-Ito (colour-blind safe)


def plot_study(study: optuna.Study, sweep_dir: Path) -> list[Path]:
    """Write the search's plots into `sweep_dir` (a plot with nothing to show is skipped); returns their paths."""
    plots: dict[str, Callable[[optuna.Study], object]] = {
        "optuna_history.png": _history, "optuna_slice.png": _slice,
        "optuna_intermediate_values.png": intermediate_values,
        "optuna_parallel_coordinate.png": _parallel_coordinate, "optuna_importances.png": _importances,
    }  # fmt: skip
    written = []
    for name, plot in plots.items():
        if not _complete(study) and name != "optuna_intermediate_values.png":
            continue
        try:
            if _draw(study, plot, sweep_dir / name):
                written.append(sweep_dir / name)
        except Exception as e:  # noqa: BLE001 -- Optuna's or matplotlib's, on a study shape they do not handle
            log.warning("%s left out: drawing it failed (%s: %s)", name, type(e).__name__, e)
        finally:
            plt.close("all")
    return written


def _draw(study: optuna.Study, plot: Callable[[optuna.Study], object], path: Path) -> bool:
    """Draw one plot and save it to `path`; False when it has nothing to show."""
    with warnings.catch_warnings():  # optuna.visualization.matplotlib is "experimental" in optuna 2.x
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        axes = plot(study)
    if axes is None:
        return False
    axes = np.atleast_1d(axes).ravel()
    fig = axes[0].figure
    if not any(ax.has_data() for ax in axes):
        return False
    if len(fig.axes) == len(axes):  # tight_layout would pull Optuna's colour bar over the plots
        fig.tight_layout()
    save_figure(fig, path, dpi=100, bbox_inches="tight")
    return True


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _pruned(study: optuna.Study) -> list[FrozenTrial]:
    """Pruned trials that reported at least one val Dice."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)) if t.intermediate_values]


def _last(trial: FrozenTrial) -> float:
    return trial.intermediate_values[max(trial.intermediate_values)]


def _history(study: optuna.Study):
    ax = optuna_plots.plot_optimization_history(study, target_name=METRIC)
    pruned = _pruned(study)
    if pruned:
        ax.plot([t.number for t in pruned], [_last(t) for t in pruned], "x", color=RED, ms=7, mew=2, zorder=3,
                label="pruned trial (its last val Dice)")  # fmt: skip
    ys = [t.value for t in _complete(study)] + [_last(t) for t in pruned]
    pad = max(0.01, 0.08 * (max(ys) - min(ys)))
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="trial", ylabel=METRIC, title=f"{METRIC} per trial, and the best so far")
    ax.legend(fontsize=8, loc="best")
    ax.figure.set_size_inches(7.5, 4.8)
    return ax


def _slice(study: optuna.Study):
    axes = np.atleast_1d(optuna_plots.plot_slice(study, target_name=f"best {METRIC}")).ravel()
    axes[0].set_title("")
    params = sorted({p for t in _complete(study) for p in t.params})
    pruned = _pruned(study)
    for ax, param in zip(axes, params):
        log_scaled = any(isinstance(t.distributions.get(param), LogUniformDistribution) for t in _complete(study))
        points = [(t.params[param], _last(t)) for t in pruned if param in t.params]
        done = [(t.params[param], t.value) for t in _complete(study) if param in t.params]
        if done and not isinstance(done[0][0], str):
            if points:
                ax.plot(*zip(*points), "x", color=RED, ms=7, mew=2, label="pruned (last val Dice)")
                ax.legend(fontsize=8, loc="lower right")
            _fit(ax, [*points, *done], log_scaled)  # Optuna's limits cover the completed trials only
        if log_scaled:
            _log_axis(ax)
        ax.set_xlabel(param + (" (log scale)" if log_scaled else ""))
    axes[0].figure.suptitle(f"best {METRIC} against each searched parameter (completed trials: colour = trial number)",
                            fontsize=10)  # fmt: skip
    axes[0].figure.set_size_inches(max(6.4, 4.6 * len(axes)), 4.8)
    return axes


def _fit(ax, points: list[tuple[float, float]], log_scaled: bool) -> None:
    """Axis limits around every (x, y) point; a log x axis spans at least a factor of 3 (room for a tick)."""
    xs, ys = [float(x) for x, _ in points], [float(y) for _, y in points]
    if log_scaled:
        middle, half = math.sqrt(min(xs) * max(xs)), math.sqrt(max(max(xs) / min(xs), 3.0)) * 1.2
        ax.set_xlim(middle / half, middle * half)
    else:
        pad = 0.05 * (max(xs) - min(xs)) or 0.5
        ax.set_xlim(min(xs) - pad, max(xs) + pad)
    pad = max(0.01, 0.08 * (max(ys) - min(ys)))
    ax.set_ylim(min(ys) - pad, max(ys) + pad)


def _log_axis(ax) -> None:
    """A log x axis with ticks at 1, 2, 3 and 5 x 10^k within a decade, at 1, 2 and 5 x 10^k up to two decades, at 10^k
    beyond; each tick labelled once (`2e-4`)."""
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    subs = (1.0, 2.0, 3.0, 5.0) if high / low <= 10 else (1.0, 2.0, 5.0) if high / low <= 100 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}".replace("e-0", "e-")))
    ax.xaxis.set_minor_formatter(NullFormatter())


def intermediate_values(study: optuna.Study):
    """Val Dice per epoch of every trial that reported one (see the module docstring); None when there is none."""
    complete = [t for t in _complete(study) if t.intermediate_values]
    pruned = _pruned(study)
    if not complete and not pruned:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    best = max(complete, key=lambda t: t.value) if complete else None
    values = []
    for trial in [*pruned, *complete]:
        epochs = sorted(trial.intermediate_values)
        dice = [trial.intermediate_values[e] for e in epochs]
        values += dice
        if trial.state == TrialState.PRUNED:
            ax.plot(epochs, dice, "--", color=GRAY, lw=1)
            ax.plot(epochs[-1:], dice[-1:], "x", color=RED, ms=7, mew=2)
        elif trial is not best:
            ax.plot(epochs, dice, "-", color=BLUE, lw=1, alpha=0.6)
    if best is not None:
        epochs = sorted(best.intermediate_values)
        ax.plot(epochs, [best.intermediate_values[e] for e in epochs], "-o", color=ORANGE, lw=2.5, ms=4, zorder=4)
    low, high = min(values), max(values)
    pad = max(0.02, 0.08 * (high - low))
    ax.set_ylim(low - pad, high + pad)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=BLUE, label=f"completed ({len(complete)})"),
               Line2D([], [], color=GRAY, ls="--", marker="x", mec=RED, mew=2, label=f"pruned ({len(pruned)}): x where "
                      "it stopped")]  # fmt: skip
    if best is not None:
        handles.insert(0, Line2D([], [], color=ORANGE, lw=2.5, marker="o", label=f"best: trial {best.number}"))
    ax.legend(handles=handles, fontsize=8)
    ax.set(xlabel="epoch", ylabel=METRIC, title=f"{METRIC} per epoch of each trial")
    return ax


def _parallel_coordinate(study: optuna.Study):
    """One line per completed trial through an axis per parameter (log10 for a log-scaled one, categories by
    index) and val Dice, coloured by val Dice. Drawn here: Optuna 2.10's version fails on today's matplotlib (its
    colour bar has no axes)."""
    trials = _complete(study)
    params = sorted({p for t in trials for p in t.params})
    if len(params) < 2:
        return None  # one parameter: the slice plot says it all
    columns, labels = [], []
    for param in params:
        raw = [t.params.get(param) for t in trials]
        if all(isinstance(v, (int, float)) for v in raw):
            log_scaled = isinstance(trials[0].distributions.get(param), LogUniformDistribution)
            columns.append(np.log10(raw) if log_scaled else np.asarray(raw, float))
            labels.append(f"log10 {param}" if log_scaled else param)
        else:
            names = sorted({str(v) for v in raw})
            columns.append(np.asarray([names.index(str(v)) for v in raw], float))
            labels.append(f"{param}\n({', '.join(names)})")
    columns.append(np.asarray([t.value for t in trials], float))
    labels.append(METRIC)
    data = np.stack(columns, axis=1)
    low, high = data.min(axis=0), data.max(axis=0)
    scaled = (data - low) / np.where(high > low, high - low, 1)
    fig, ax = plt.subplots(figsize=(max(7, 2.6 * len(labels)), 4.8))
    colors = plt.cm.viridis((data[:, -1] - low[-1]) / max(high[-1] - low[-1], 1e-12))
    for row, color in sorted(zip(scaled, colors), key=lambda rc: rc[0][-1]):
        ax.plot(range(len(labels)), row, color=color, lw=1.2, alpha=0.8)
    for i in range(len(labels)):
        ax.axvline(i, color="0.3", lw=1)
        ax.text(i, -0.04, f"{low[i]:.3g}", ha="center", va="top", fontsize=8)
        ax.text(i, 1.04, f"{high[i]:.3g}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, fontsize=9)
    ax.set_yticks([])
    ax.set_ylim(-0.15, 1.15)
    ax.set_title(f"searched parameters of each completed trial, coloured by {METRIC}\n(each axis from its minimum "
                 "to its maximum)")
    return ax


def _importances(study: optuna.Study):
    params = {p for t in _complete(study) for p in t.params}
    if len(params) < 2 or len(_complete(study)) < 3:
        log.info("optuna_importances.png left out: it needs 2 searched parameters and 3 completed trials")
        return None
    importances = optuna.importance.get_param_importances(
        study, evaluator=MeanDecreaseImpurityImportanceEvaluator(seed=0)
    )  # drawn here: Optuna 2.10's plot_param_importances needs matplotlib.cm.get_cmap, gone from matplotlib 3.9
    names, shares = list(importances)[::-1], list(importances.values())[::-1]  # the most important on top
    if not sum(shares) > 0:
        log.info("optuna_importances.png left out: the completed trials' %s are all equal", METRIC)
        return None
    fig, ax = plt.subplots(figsize=(7.5, 1.6 + 0.5 * len(names)))
    bars = ax.barh(names, shares, color=BLUE)
    ax.bar_label(bars, labels=[f"{v:.0%}" for v in shares], padding=3, fontsize=9)
    ax.set_xlim(0, min(1.0, max(shares) * 1.2 + 0.05))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set(xlabel=f"importance for {METRIC} (shares sum to 100%)",
           title=f"importance of each searched parameter ({len(_complete(study))} completed trials)\n"
                 "mean decrease in impurity of a random forest (Optuna's evaluator)")  # fmt: skip
    return ax
