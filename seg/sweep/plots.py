"""A search's plots, drawn by Optuna's own matplotlib visualisations over all trials of its study:
optuna_history.png (val Dice per trial and the best so far), optuna_intermediate_values.png (val Dice per epoch of
every trial: where pruned trials stopped) and optuna_slice.png (each searched parameter against val Dice)."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402
from optuna.visualization import matplotlib as optuna_plots  # noqa: E402

METRIC = "val Dice"
PLOTS = {
    "optuna_history.png": lambda s: optuna_plots.plot_optimization_history(s, target_name=f"best {METRIC}"),
    "optuna_intermediate_values.png": optuna_plots.plot_intermediate_values,
    "optuna_slice.png": lambda s: optuna_plots.plot_slice(s, target_name=f"best {METRIC}"),
}


def plot_study(study: optuna.Study, sweep_dir: Path) -> list[Path]:
    """Write the search's plots into `sweep_dir` (a plot with nothing to show is skipped); returns their paths."""
    written = []
    with warnings.catch_warnings():  # optuna.visualization.matplotlib is "experimental" in optuna 2.x
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name, plot in PLOTS.items():
            axes = np.atleast_1d(plot(study)).ravel()
            fig = axes[0].figure
            if not any(ax.has_data() for ax in axes):
                plt.close(fig)
                continue
            if name != "optuna_slice.png":  # trials and epochs are whole numbers
                for ax in axes:
                    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if name == "optuna_intermediate_values.png":
                axes[0].set(xlabel="epoch", ylabel=METRIC, title=f"{METRIC} per epoch of each trial")
            if name == "optuna_history.png":
                axes[0].set(xlabel="trial", title=f"best {METRIC} per trial (COMPLETE trials)")
            for ax in (ax for ax in axes if ax.get_xscale() == "log"):  # e.g. lr: ticks at 1, 2, 5 x 10^k
                ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
            fig.set_size_inches(max(6.4, 4 * len(axes)), 4.8)
            fig.tight_layout()
            fig.savefig(sweep_dir / name, dpi=100)
            plt.close(fig)
            written.append(sweep_dir / name)
    return written
