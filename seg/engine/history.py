"""Per-epoch history on local disk: the run's `metrics.csv` (appended every epoch) and `curves.png`."""

from __future__ import annotations

import csv

from seg.rundir import METRICS_COLUMNS, RunDir
from seg.viz import plot_curves


class History:
    """The rows of the run's metrics.csv, one per epoch; survives interruption (each row is flushed)."""

    def __init__(self, run: RunDir, completed_epochs: int = 0):
        """Open the run's metrics.csv, keeping the rows of epochs 1..completed_epochs (a resumed run)."""
        self.run = run
        self.rows = [r for r in run.read_metrics() if r["epoch"] <= completed_epochs]
        self._rewrite()

    def append(self, row: dict[str, float]) -> None:
        self.rows.append({k: row[k] for k in METRICS_COLUMNS})
        with self.run.metrics.open("a", newline="") as f:
            csv.DictWriter(f, METRICS_COLUMNS).writerow(self.rows[-1])

    def _rewrite(self) -> None:
        with self.run.metrics.open("w", newline="") as f:
            writer = csv.DictWriter(f, METRICS_COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)

    def plot(self, title: str, subtitle: str, best_epoch: int) -> None:
        """curves.png: loss, Dice and lr against epoch, train and val overlaid, the best epoch marked."""
        plot_curves(self.rows, self.run.curves, title, subtitle, best_epoch)
