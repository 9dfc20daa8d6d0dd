"""Per-epoch history on local disk: `metrics.csv` (appended every epoch) and `curves.png`."""

from __future__ import annotations

import csv
from pathlib import Path

from seg.viz import plot_curves

COLUMNS = ["epoch", "train/loss", "train/dice", "val/loss", "val/dice", "lr", "seconds"]


class History:
    """The rows of `metrics.csv`, one per epoch; survives interruption (each row is flushed)."""

    def __init__(self, run_dir: Path, completed_epochs: int = 0):
        """Open `run_dir/metrics.csv`, keeping the rows of epochs 1..completed_epochs (a resumed run)."""
        self.csv_path = run_dir / "metrics.csv"
        self.png_path = run_dir / "curves.png"
        self.rows = [r for r in read_metrics(self.csv_path) if r["epoch"] <= completed_epochs]
        self._rewrite()

    def append(self, row: dict[str, float]) -> None:
        self.rows.append({k: row[k] for k in COLUMNS})
        with self.csv_path.open("a", newline="") as f:
            csv.DictWriter(f, COLUMNS).writerow(self.rows[-1])

    def _rewrite(self) -> None:
        with self.csv_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)

    def plot(self, title: str, subtitle: str, best_epoch: int) -> None:
        """curves.png: loss, Dice and lr against epoch, train and val overlaid, the best epoch marked."""
        plot_curves(self.rows, self.png_path, title, subtitle, best_epoch)


def read_metrics(path: Path) -> list[dict[str, float]]:
    """Rows of a `metrics.csv` as dicts of floats (epoch as int); [] when the file is absent."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    for r in rows:
        r["epoch"] = int(r["epoch"])
    return rows
