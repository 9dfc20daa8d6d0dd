"""Figures for people: training curves and segmentation overlays that show where a model is wrong.

Colours (`COLORS`) come from colour-blind-safe choices (Okabe-Ito / magenta-cyan) and stay readable on any fur:
false positives magenta, false negatives sky blue, true positives a faint bluish green, and the mask outline
in yellow with a black line just inside it, so a boundary stays visible where a filled tint would vanish
(a red fill on an orange cat) and on white or golden fur.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from seg.files import save_figure  # noqa: E402

COLORS: dict[str, tuple[int, int, int]] = {
    "tp": (0, 158, 115),  # Okabe-Ito bluish green, drawn faintly: correct pet pixels
    "fp": (255, 0, 255),  # magenta: predicted pet, truly background
    "fn": (0, 170, 255),  # sky blue: missed pet pixels
    "outline": (255, 225, 0),  # yellow: ground-truth (or predicted) mask boundary, drawn opaque
    "halo": (0, 0, 0),  # black line just inside the outline, so it shows on white or golden fur too
    "prediction": (0, 170, 255),  # sky blue: predicted region when there is no ground truth
}
"""RGB 0..255 per overlay role; magenta and sky blue stay distinct under red-green colour blindness."""

TP_FADE = 0.35
"""True positives get this fraction of `alpha`: context, not the message."""

SPLIT_COLORS = {"train": "tab:blue", "val": "tab:orange"}


def _rgb(name: str) -> tuple[float, float, float]:
    """`COLORS[name]` scaled to matplotlib's 0..1."""
    r, g, b = COLORS[name]
    return r / 255, g / 255, b / 255


def plot_curves(
    rows: list[dict[str, float]], path: Path, title: str, subtitle: str = "", best_epoch: int | None = None
) -> None:
    """Write loss, Dice and learning rate against epoch to `path` (see `_curves_figure`)."""
    fig = _curves_figure(rows, title, subtitle, best_epoch)
    try:
        save_figure(fig, path, dpi=100)  # replaces a symlink at `path`, never writes through it
    finally:
        plt.close(fig)


def _curves_figure(rows: list[dict[str, float]], title: str, subtitle: str, best_epoch: int | None) -> Figure:
    """Three panels (loss, Dice, lr) from `metrics.csv` rows (keys epoch, train/loss, ..., lr, seconds).

    `title` is the run name, `subtitle` the settings that define it. `best_epoch` (the epoch whose checkpoint
    was kept; the highest val Dice when None) gets a vertical line and a star on the loss and Dice panels.
    """
    epochs = [int(r["epoch"]) for r in rows]
    size = 4 if len(rows) <= 40 else 2
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    if best_epoch is None and rows:
        best_epoch = int(max(rows, key=lambda r: r["val/dice"])["epoch"])
    best = next((r for r in rows if int(r["epoch"]) == best_epoch), None)
    for ax, metric, name in ((axes[0], "loss", "Loss"), (axes[1], "dice", "Dice")):
        for split, color in SPLIT_COLORS.items():
            ax.plot(epochs, [r[f"{split}/{metric}"] for r in rows], marker="o", ms=size, color=color, label=split)
        if best is not None:
            ax.axvline(best_epoch, color="0.4", ls="--", lw=1)
            label = f"best val Dice {best['val/dice']:.4f} (epoch {best_epoch})"
            star = {"marker": "*", "ms": 16, "color": "gold", "mec": "k", "ls": "", "clip_on": False}
            ax.plot([best_epoch], [best[f"val/{metric}"]], label=label, **star)
        ax.set(title=name, xlabel="epoch")
        ax.margins(y=0.1)  # room for the best-epoch star at the top or bottom of the range
        ax.legend(fontsize=8)
    lrs = [r["lr"] for r in rows]
    axes[2].plot(epochs, lrs, marker="o", ms=size, color="tab:green")
    axes[2].set(title="Learning rate", xlabel="epoch", yscale="log" if lrs and min(lrs) > 0 else "linear")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs:
            pad = max(0.5, 0.02 * (max(epochs) - min(epochs)))
            ax.set_xlim(min(epochs) - pad, max(epochs) + pad)
    fig.text(0.5, 0.98, title, ha="center", va="top", fontsize=13, fontweight="bold")
    fig.text(0.5, 0.925, textwrap.fill(subtitle, 170), ha="center", va="top", fontsize=9, color="0.3")
    fig.tight_layout(rect=(0, 0, 1, 0.87 if len(subtitle) > 170 else 0.9))
    return fig


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Boundary of bool `mask` (H, W): its pixels within `width` of a non-mask pixel (8-connected), bool (H, W).

    The image border is not a boundary: a mask touching the edge is not outlined along it.
    """
    padded = np.pad(mask.astype(bool), width, mode="edge")
    window = 2 * width + 1
    rows_min = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0).all(axis=-1)
    eroded = np.lib.stride_tricks.sliding_window_view(rows_min, window, axis=1).all(axis=-1)
    return mask & ~eroded


def _draw_outline(image: np.ndarray, mask: np.ndarray) -> None:
    """Draw the boundary of bool `mask` (H, W) onto `image` (H, W, 3) in place: yellow, black just inside it.

    Width grows with the image (1 px up to 374 px per side), so the line survives downscaling in a figure.
    """
    width = max(1, round(max(mask.shape) / 250))
    edge = outline(mask, width)
    image[outline(mask, 2 * width) & ~edge] = COLORS["halo"]
    image[edge] = COLORS["outline"]


def error_overlay(
    image: np.ndarray,
    pred: np.ndarray,
    target: np.ndarray | None = None,
    valid: np.ndarray | None = None,
    alpha: float = 0.45,
) -> np.ndarray:
    """`image` (H, W, 3) uint8 with the prediction's errors coloured; returns (H, W, 3) uint8.

    pred, target, valid: bool (H, W). With `target`, false positives are tinted `COLORS["fp"]`, false negatives
    `COLORS["fn"]`, true positives faintly `COLORS["tp"]`, and the ground-truth outline drawn opaque in
    `COLORS["outline"]` (with a `COLORS["halo"]` line just inside). Without one, the predicted region is tinted
    `COLORS["prediction"]` and outlined the same way. Pixels where `valid` is False (ignored by the metrics) are
    left untouched.
    """
    valid = np.ones(pred.shape, bool) if valid is None else valid.astype(bool)
    pred = pred.astype(bool) & valid
    out = image.astype(np.float32)

    def tint(region: np.ndarray, color: str, strength: float) -> None:
        out[region] = (1 - strength) * out[region] + strength * np.asarray(COLORS[color], np.float32)

    if target is None:
        tint(pred, "prediction", alpha)
        _draw_outline(out, pred)
    else:
        target = target.astype(bool) & valid
        tint(pred & target, "tp", alpha * TP_FADE)
        tint(pred & ~target, "fp", alpha)
        tint(~pred & target, "fn", alpha)
        _draw_outline(out, target)
    return out.round().astype(np.uint8)


def with_outline(image: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """A copy of `image` (H, W, 3) uint8 with the outline of bool `target` (H, W) drawn where `valid` (all: None)."""
    out = image.copy()
    _draw_outline(out, target.astype(bool) & (True if valid is None else valid.astype(bool)))
    return out


def overlay_legend() -> list:
    """Legend handles of `error_overlay`'s colours on a gray image, for every figure that shows one."""
    return [
        Patch(color=_rgb("fp"), label="false positive (predicted pet, is background)"),
        Patch(color=_rgb("fn"), label="false negative (missed pet)"),
        Patch(color=_rgb("tp"), alpha=0.5, label="true positive"),
        Line2D([], [], color=_rgb("outline"), lw=3, label="true mask outline (black line inside it)"),
        Patch(facecolor="0.6", edgecolor="0.4", label="gray: correct background, or ignored (trimap border)"),
    ]


def grayscale(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 luminance copy of an RGB `image` (ITU-R 601 weights), still 3 channels."""
    luminance = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(luminance.round().clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)


@dataclass
class ExampleRow:
    """One image of an example grid.

    image: (H, W, 3) uint8; target: bool (H, W); valid: bool (H, W) or None (all pixels count);
    prob: float (H, W) in [0, 1]; pixels with prob > threshold are predicted pet; dice: this image's Dice;
    tag: why it was picked ("worst", "random" or "").
    """

    name: str
    image: np.ndarray
    target: np.ndarray
    valid: np.ndarray | None
    prob: np.ndarray
    threshold: float
    dice: float
    tag: str = ""


def example_grid(rows: list[ExampleRow], path: Path, title: str = "") -> None:
    """Write one row per example to `path` (see `_example_figure`)."""
    fig = _example_figure(rows, title)
    try:
        save_figure(fig, path, dpi=100)  # replaces a symlink at `path`, never writes through it
    finally:
        plt.close(fig)


def _example_figure(rows: list[ExampleRow], title: str) -> Figure:
    """Per row: the image with the ground-truth outline, the probability map with a colour bar, the errors.

    The errors are drawn on a gray copy of the image, so that their colours cannot be mistaken for the image's own
    (a magenta false positive on a magenta background). The error panel's title carries the image's Dice; one
    legend for the overlay colours ends the figure.
    """
    fig, axes = plt.subplots(len(rows), 3, figsize=(11, 3.4 * len(rows) + 0.8), squeeze=False, layout="constrained")
    for ax_row, row in zip(axes, rows):
        tag = f" ({row.tag})" if row.tag else ""
        ax_row[0].imshow(with_outline(row.image, row.target, row.valid))
        ax_row[0].set_title(f"{row.name}{tag}\nimage, true outline", fontsize=9)
        shown = ax_row[1].imshow(row.prob, cmap="viridis", vmin=0, vmax=1)
        bar = fig.colorbar(shown, ax=ax_row[1], fraction=0.046, pad=0.03)
        bar.set_label("P(pet)", fontsize=8)
        bar.ax.axhline(row.threshold, color="w", lw=1.5)
        bar.ax.tick_params(labelsize=7)
        ax_row[1].contour(row.prob, levels=[row.threshold], colors="w", linewidths=1)
        ax_row[1].set_title(f"probability; white: threshold {row.threshold:g}", fontsize=9)
        ax_row[2].imshow(error_overlay(grayscale(row.image), row.prob > row.threshold, row.target, row.valid))
        ax_row[2].set_title(f"errors, Dice {row.dice:.3f}", fontsize=10, fontweight="bold")
        for ax in ax_row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.legend(handles=overlay_legend(), loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=12, fontweight="bold")
    return fig
