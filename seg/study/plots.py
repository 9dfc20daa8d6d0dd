"""The study report's figures: the comparisons (every seed a dot, the intervals, the margin) and, per ablation,
the val Dice curves (mean and ± 1 std band per arm) and the per-image test Dice distribution per arm."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from seg.files import save_figure  # noqa: E402
from seg.study.plan import Ablation  # noqa: E402
from seg.study.results import Paired, Run  # noqa: E402
from seg.study.stats import Verdict  # noqa: E402

KIND_COLORS = {"difference": "#D55E00", "no difference": "#009E73", "unresolved": "#555555"}
ARM_COLORS = ["#0072B2", "#E69F00", "#CC79A7", "#009E73", "#56B4E9", "#D55E00"]


def plot_comparisons(pairs: list[tuple[Paired, Verdict]], margin: float, metric: str, path: Path,
                     note: str = "") -> None:  # fmt: skip
    """One row per comparison: each seed's paired difference (dot), the mean (diamond), the seed-bootstrap CI
    (thick bar) and the seeds-then-images CI (thin bar), against 0 and the ± margin band."""
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.55 * max(1, len(pairs))))
    ax.axvspan(-margin, margin, color="#009E73", alpha=0.12, label=f"± margin {margin:g}")
    ax.axvline(0, color="0.3", lw=1)
    for row, (p, v) in enumerate(pairs):
        y = -row
        color = KIND_COLORS[v.kind]
        diffs = p.comparison.arm - p.comparison.baseline
        jitter = np.linspace(-0.12, 0.12, len(diffs)) if len(diffs) > 1 else np.zeros(1)
        ax.plot(diffs, y + jitter, "o", ms=5, color=color, alpha=0.7, mec="none")
        if v.ci_hierarchical is not None and not math.isnan(v.ci_hierarchical[0]):
            ax.plot(v.ci_hierarchical, [y - 0.28] * 2, color=color, lw=1.2)
        if not math.isnan(v.ci_seeds[0]):
            ax.plot(v.ci_seeds, [y - 0.2] * 2, color=color, lw=4, solid_capstyle="butt")
        ax.plot([v.mean_diff], [y - 0.2], "D", ms=7, color=color, mec="k")
    ax.set_yticks([-r for r in range(len(pairs))], [f"{p.name}\n{v.kind}, n={v.n_seeds}" for p, v in pairs],
                  fontsize=8)  # fmt: skip
    ax.set_ylim(-len(pairs) + 0.4, 0.6)
    ax.set_xlabel(f"arm − baseline ({metric.replace('_', ' ')}), paired by seed")
    handles = [Line2D([], [], marker="o", ls="", color="0.4", label="one seed"),
               Line2D([], [], marker="D", ls="", color="0.4", mec="k", label="mean"),
               Line2D([], [], lw=4, color="0.4", label="CI over seeds"),
               Line2D([], [], lw=1.2, color="0.4", label="CI seeds-then-images"),
               *[Line2D([], [], lw=6, color=c, label=k) for k, c in KIND_COLORS.items()]]  # fmt: skip
    ax.legend(handles=[*ax.get_legend_handles_labels()[0], *handles], fontsize=7, loc="upper left",
              bbox_to_anchor=(1.01, 1))  # fmt: skip
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Paired differences against the baseline (95% CIs unless a sequential design lowers alpha)" + note,
                 wrap=True)  # note: " (DEBUG RUN: ...)" for a smoke study
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def plot_ablation(ab: Ablation, arms: dict[str, dict[str, list[Run]]], path: Path, note: str = "") -> None:
    """Row 1: val Dice per epoch, mean over seeds with a ± 1 std band, per arm; row 2: the per-image test Dice
    (mean over seeds) of each arm as a box with every image as a dot. One column per stratum."""
    strata = list(arms)
    fig, axes = plt.subplots(2, len(strata), figsize=(6 * len(strata), 8), squeeze=False)
    for col, stratum in enumerate(strata):
        curves, boxes = axes[0, col], axes[1, col]
        data, labels = [], []
        for i, (arm, runs) in enumerate(arms[stratum].items()):
            color = ARM_COLORS[i % len(ARM_COLORS)]
            histories = [r.curves for r in runs if r.curves]
            if histories:
                epochs = sorted({int(row["epoch"]) for h in histories for row in h})
                values = [[row["val/dice"] for h in histories for row in h if int(row["epoch"]) == e] for e in epochs]
                mean, std = np.array([np.mean(v) for v in values]), np.array([np.std(v) for v in values])
                curves.plot(epochs, mean, marker="o", ms=4, color=color, label=f"{arm} (n={len(histories)})")
                curves.fill_between(epochs, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), color=color,
                                    alpha=0.2)  # fmt: skip
            tables = [r.per_image for r in runs if r.per_image]
            names = sorted(set.intersection(*(set(t) for t in tables))) if tables else []
            data.append([float(np.mean([t[n] for t in tables])) for n in names])
            labels.append(f"{arm}\n({len(tables)} seeds)")
        curves.set(title=f"val Dice {stratum}".strip(), xlabel="epoch", ylabel="val Dice")
        curves.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if curves.get_legend_handles_labels()[0]:
            curves.legend(title=ab.factor, fontsize=8)
        curves.grid(alpha=0.3)
        if any(data):
            boxes.boxplot([d or [math.nan] for d in data], showfliers=False)
            for i, d in enumerate(data):
                x = np.full(len(d), i + 1.0) + np.linspace(-0.15, 0.15, len(d)) if d else []
                boxes.plot(x, d, "o", ms=3, alpha=0.5, color=ARM_COLORS[i % len(ARM_COLORS)])
            boxes.set_xticks(range(1, len(labels) + 1), labels)
        boxes.set(title=f"per-image test Dice (mean over seeds) {stratum}".strip(), ylabel="test Dice", ylim=(0, 1.02))
        boxes.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{ab.name}: {ab.factor} (baseline {ab.baseline}){note}", wrap=True)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
