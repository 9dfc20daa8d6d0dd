"""The figures of `seg.viz`: overlay colours pixel by pixel, outlines, and what the curve and example figures hold."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from seg.viz import (
    COLORS,
    TP_FADE,
    ExampleRow,
    _curves_figure,
    _example_figure,
    error_overlay,
    example_grid,
    outline,
    plot_curves,
)


def blend(image: np.ndarray, color: str, alpha: float) -> np.ndarray:
    """What `error_overlay` makes of (N, 3) uint8 pixels tinted `COLORS[color]` at strength `alpha`."""
    return ((1 - alpha) * image.astype(np.float32) + alpha * np.asarray(COLORS[color], np.float32)).round()


@pytest.fixture
def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A random 40x40 image, a target square, a shifted prediction square, and an ignored strip in both."""
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    target = np.zeros((40, 40), bool)
    target[10:30, 10:30] = True
    pred = np.zeros((40, 40), bool)
    pred[15:35, 15:35] = True
    valid = np.ones((40, 40), bool)
    valid[:, 37:] = False  # outside both
    valid[31:35, 31:35] = False  # inside the false positives
    return image, pred, target, valid


def test_outline_of_square_is_its_border_ring():
    mask = np.zeros((10, 12), bool)
    mask[2:7, 3:9] = True
    interior = np.zeros_like(mask)
    interior[3:6, 4:8] = True
    np.testing.assert_array_equal(outline(mask), mask & ~interior)
    thick = np.zeros_like(mask)
    thick[4:5, 5:7] = True
    np.testing.assert_array_equal(outline(mask, width=2), mask & ~thick)


def test_outline_of_empty_or_full_mask_is_empty():
    assert not outline(np.zeros((8, 8), bool)).any()
    assert not outline(np.ones((8, 8), bool)).any()  # the image border is not a boundary


def test_error_overlay_colours_errors_and_leaves_the_rest(scene):
    image, pred, target, valid = scene
    out = error_overlay(image, pred, target, valid, alpha=0.45)
    assert out.shape == image.shape and out.dtype == np.uint8
    edge, band = outline(target), outline(target, 2)  # 40 px images: 1 px outline, 1 px halo inside it
    fp = pred & ~target & valid
    fn = ~pred & target & valid & ~band
    tp = pred & target & ~band
    assert fp.any() and fn.any() and tp.any()
    np.testing.assert_array_equal(out[fp], blend(image[fp], "fp", 0.45))
    np.testing.assert_array_equal(out[fn], blend(image[fn], "fn", 0.45))
    np.testing.assert_array_equal(out[tp], blend(image[tp], "tp", 0.45 * TP_FADE))
    assert (out[edge] == COLORS["outline"]).all()
    assert (out[band & ~edge] == COLORS["halo"]).all()
    untouched = (~pred & ~target) | ~valid
    np.testing.assert_array_equal(out[untouched], image[untouched])
    assert not np.array_equal(COLORS["fp"], COLORS["fn"])


def test_error_overlay_without_target_tints_and_outlines_the_prediction(scene):
    image, pred, _, _ = scene
    out = error_overlay(image, pred, alpha=0.3)
    inside = pred & ~outline(pred, 2)
    np.testing.assert_array_equal(out[inside], blend(image[inside], "prediction", 0.3))
    assert (out[outline(pred)] == COLORS["outline"]).all()
    np.testing.assert_array_equal(out[~pred], image[~pred])


def metric_rows(n: int) -> list[dict[str, float]]:
    """`n` epochs of plausible `metrics.csv` rows; val Dice peaks at epoch 3 when n >= 3."""
    return [
        {
            "epoch": e,
            "train/loss": 1 / e,
            "train/dice": 1 - 1 / (e + 1),
            "val/loss": 1 / e + 0.1,
            "val/dice": 0.8 - 0.02 * abs(e - 3),
            "lr": 1e-3 / e,
            "seconds": 2.0,
        }
        for e in range(1, n + 1)
    ]


@pytest.mark.parametrize("epochs", [1, 5])
def test_plot_curves_is_readable_for_any_length(tmp_path: Path, epochs: int):
    path = tmp_path / "curves.png"
    plot_curves(metric_rows(epochs), path, "my-run", "model=unet lr=0.001")
    with Image.open(path) as png:
        assert png.size[0] > 1000 and len(set(png.convert("L").getdata())) > 50

    fig = _curves_figure(metric_rows(epochs), "my-run", "model=unet lr=0.001", best_epoch=None)
    texts = [t.get_text() for t in fig.texts]
    assert "my-run" in texts and "model=unet lr=0.001" in texts
    for ax in fig.axes:
        data_lines = [line for line in ax.get_lines() if line.get_linestyle() == "-"]  # not the best-epoch marks
        assert data_lines and all(line.get_marker() not in ("None", "", None) for line in data_lines)
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks)
    best = "best val Dice 0.7600 (epoch 1)" if epochs == 1 else "best val Dice 0.8000 (epoch 3)"
    assert [line.get_label() for ax in fig.axes[:2] for line in ax.get_lines()].count(best) == 2
    plt.close(fig)


def test_plot_curves_marks_the_given_best_epoch():
    fig = _curves_figure(metric_rows(5), "my-run", "", best_epoch=5)
    assert "best val Dice 0.7600 (epoch 5)" in [line.get_label() for line in fig.axes[1].get_lines()]
    plt.close(fig)


def example_row(name: str, dice: float, tag: str) -> ExampleRow:
    """A 32x32 orange square with a 2 px ignored band round the target and a shifted, uncertain prediction."""
    target = np.zeros((32, 32), bool)
    target[8:24, 8:24] = True
    valid = ~(outline(target) | outline(~target))
    prob = np.roll(np.where(target, 0.8, 0.1), 3, axis=1)
    image = np.full((32, 32, 3), (200, 120, 40), np.uint8)  # an orange cat
    return ExampleRow(name, image, target, valid, prob, 0.5, dice, tag)


def test_example_grid_has_a_colour_bar_and_dice_per_row(tmp_path: Path):
    rows = [example_row("a", 0.4321, "worst"), example_row("b", 0.9, "random")]
    path = tmp_path / "examples.png"
    example_grid(rows, path, title="test split")
    assert path.stat().st_size > 10_000

    fig = _example_figure(rows, "test split")
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == len(rows) and all(bar.get_ylabel() == "P(pet)" for bar in bars)
    titles = [ax.get_title() for ax in fig.axes]
    assert "errors, Dice 0.432" in titles and "a (worst)\nimage, true outline" in titles
    assert fig.legends and len(fig.legends[0].get_texts()) == 5
    plt.close(fig)


def test_example_errors_are_drawn_on_a_gray_copy_so_no_image_colour_looks_like_an_error():
    row = example_row("a", 0.5, "worst")  # orange (200, 120, 40): luminance 135
    fig = _example_figure([row], "")
    [errors] = [ax for ax in fig.axes if ax.get_title().startswith("errors")]
    shown = np.asarray(errors.get_images()[0].get_array())
    untouched = ~(row.prob > row.threshold) & ~row.target & ~outline(row.target, 2)
    assert untouched.any() and (shown[untouched] == 135).all()
    fp = (row.prob > row.threshold) & ~row.target & row.valid
    np.testing.assert_array_equal(shown[fp], blend(np.full((int(fp.sum()), 3), 135, np.uint8), "fp", 0.45))
    plt.close(fig)
