"""Per-epoch history on local disk: the run's `metrics.csv` (written again every epoch) and `curves.png`."""

from __future__ import annotations

from seg.files import atomic_write_text, csv_text
from seg.rundir import METRICS_COLUMNS, RunDir
from seg.viz import plot_curves


class History:
    """The rows of the run's metrics.csv, one per epoch; survives interruption (the file is replaced whole after
    each epoch: never half a row, and never written through a symlink planted at its name)."""

    def __init__(self, run: RunDir, completed_epochs: int = 0):
        """Open the run's metrics.csv, keeping the rows of epochs 1..completed_epochs (a resumed run)."""
        self.run = run
        kept = completed_epochs > 0  # a new run reads nothing that was there (a planted symlink: RunDir reads none)
        self.rows = [r for r in run.read_metrics() if r["epoch"] <= completed_epochs] if kept else []
        self._rewrite()

    def append(self, row: dict[str, float]) -> None:
        self.rows.append({k: row[k] for k in METRICS_COLUMNS})
        self._rewrite()

    def _rewrite(self) -> None:
        atomic_write_text(self.run.metrics, csv_text(METRICS_COLUMNS, self.rows))

    def plot(self, title: str, subtitle: str, best_epoch: int) -> None:
        """curves.png: loss, Dice and lr against epoch, train and val overlaid, the best epoch marked."""
        plot_curves(self.rows, self.run.curves, title, subtitle, best_epoch)
