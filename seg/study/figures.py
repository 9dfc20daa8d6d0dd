"""Outputs of a study for a paper or a lab meeting, written next to report.md by seg.report:

- `tables/<n>_<heading>.csv` and `.tex` (booktabs) for every table of report.md (seg.study.tables);
- `qualitative.png`: per ablation, the same worst, median and best test images (by their Dice averaged over the
  arms) of one seed, each arm's prediction as an error overlay (colour-blind-safe colours, with a legend);
- `<ablation>_seeds.png`: val Dice per epoch of every seed, one panel per arm, each line labelled with its test
  Dice, or with its status when the run did not complete (dashed, ending in a cross: it must not look finished).

A debug study (runs with smoke limits) says so in every title.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from seg.config import debug_limits
from seg.files import save_figure
from seg.study.results import Run, StudyRecord, cells, label_text
from seg.study.tables import write_tables
from seg.viz import error_overlay, grayscale, overlay_legend, plt, with_outline

log = logging.getLogger(__name__)

SEED_COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
"""Okabe-Ito, one colour per seed (cycled)."""


def write_paper_outputs(study_dir: Path, report_md: Path, record: StudyRecord, runs: dict[str, Run]) -> list[Path]:
    """The tables, qualitative.png and the per-seed curves of the study in `study_dir` (its record and runs, as the
    report read them); returns what was written. A figure that cannot be drawn (no completed run yet) is left out
    with a log line; the tables always are."""
    written = write_tables(report_md, study_dir / "tables")
    note = debug_note(runs)
    for ab in record.ablations:
        path = study_dir / f"{ab.name}_seeds.png"
        plot_seed_curves(ab.name, record, runs, path, note)
        written.append(path)
    path = study_dir / "qualitative.png"
    if plot_qualitative(record, runs, path, note):
        written.append(path)
    return written


def debug_note(runs: dict[str, Run]) -> str:
    """` (DEBUG RUN: trainer.limit_train_batches=2, ...)` when the study's runs have smoke limits, else ''."""
    for run in runs.values():
        if run.run.config.is_file():
            from seg.config import train_config_from_yaml

            limits = debug_limits(train_config_from_yaml(run.run.config.read_text(), str(run.run.config)))
            return f" (DEBUG RUN: {', '.join(f'{k}={v}' for k, v in limits.items())})" if limits else ""
    return ""


def _arms(ablation: str, record: StudyRecord) -> list[tuple[str, dict[int, str]]]:
    """(arm label, {seed: run key}) of each cell of `ablation`, in plan order; label `arm` or `arm, stratum`."""
    return [(arm + (f", {stratum}" if stratum else ""), seeds)
            for (name, stratum, arm), seeds in cells(record.jobs).items() if name == ablation]  # fmt: skip


def plot_seed_curves(ablation: str, record: StudyRecord, runs: dict[str, Run], path: Path, note: str = "") -> None:
    """Val Dice per epoch of every seed, one panel per arm (see the module docstring)."""
    arms = _arms(ablation, record)
    fig, axes = plt.subplots(1, len(arms), figsize=(4.2 * len(arms), 3.8), sharey=True, squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax, (label, seeds) in zip(axes[0], arms):
        for i, (seed, key) in enumerate(sorted(seeds.items())):
            run = runs[key]
            rows = run.curves if run.run.metrics.is_file() else []
            epochs, dice = [int(r["epoch"]) for r in rows], [r["val/dice"] for r in rows]
            summary = run.summary
            if run.completed and summary.test_dice is not None:
                text, style = f"{label_text(seed)}: test {summary.test_dice:.3f}", {"ls": "-", "marker": "o"}
            else:
                status = summary.status.value if summary is not None else "not started"
                text, style = f"{label_text(seed)}: {status} after epoch {len(rows)}", {"ls": "--", "marker": "."}
            color = SEED_COLORS[i % len(SEED_COLORS)]
            ax.plot(epochs, dice, color=color, ms=3, label=text, **style)
            if rows and not run.completed:
                ax.plot(epochs[-1:], dice[-1:], "x", color=color, ms=9, mew=2)
        ax.set(title=label, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("val Dice")
    per = "seed and fold" if record.runs_per_seed > 1 else "seed"  # study.fold_mode=every
    fig.suptitle(textwrap.fill(f"{ablation}: val Dice per epoch, one line per {per}{note}", 45 * len(arms)),
                 fontsize=11, fontweight="bold")
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def plot_qualitative(record: StudyRecord, runs: dict[str, Run], path: Path, note: str = "") -> bool:
    """qualitative.png: per ablation, one row per picked image (worst, median, best of one seed), the image with
    its true outline, then each arm's errors. False when no ablation has a seed where every arm completed."""
    sections = [s for ab in record.ablations if (s := _section(ab.name, record, runs)) is not None]
    if not sections:
        log.info("qualitative.png: no seed of any ablation where every arm completed; not drawn")
        return False
    n_rows, n_cols = sum(len(s[2]) for s in sections), 1 + max(len(s[1]) for s in sections)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.3 * n_cols, 2.45 * n_rows + 0.9), squeeze=False,
                             layout="constrained")  # fmt: skip
    row = 0
    for ablation, arms, picked, seed in sections:
        for tag, images in picked:
            axes[row][0].imshow(with_outline(images["image"], images["target"], images["valid"]))
            axes[row][0].set_title(f"{ablation}, {label_text(seed, long=True)}\n{tag}: {images['name']}", fontsize=8)
            for col, (label, pred, dice) in enumerate(images["arms"], start=1):
                overlay = error_overlay(grayscale(images["image"]), pred, images["target"], images["valid"])
                axes[row][col].imshow(overlay)
                axes[row][col].set_title(f"{label}\nDice {dice:.3f}", fontsize=8)
            for ax in axes[row]:
                ax.set_xticks([])
                ax.set_yticks([])
            for ax in axes[row][1 + len(arms):]:
                ax.axis("off")
            row += 1
    fig.legend(handles=overlay_legend(), loc="outside lower center", ncols=3 if n_cols > 3 else 2, fontsize=7,
               frameon=False)  # fmt: skip
    title = f"Study {record.name}: the same test images under every arm{note}"
    fig.suptitle(textwrap.fill(title, 16 * n_cols), fontsize=10, fontweight="bold")
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return True


def _section(ablation: str, record: StudyRecord, runs: dict[str, Run]):
    """(ablation, arms, [(tag, images)], seed) for the first seed where every arm of `ablation` completed."""
    arms = _arms(ablation, record)
    common = sorted(set.intersection(*(set(s) for _, s in arms))) if arms else []
    seed = next((s for s in common if all(_drawable(runs[seeds[s]]) for _, seeds in arms)), None)
    if seed is None:
        return None
    tables = [runs[seeds[seed]].per_image for _, seeds in arms]
    names = sorted(set.intersection(*(set(t) for t in tables)))
    mean = {n: float(np.mean([t[n] for t in tables])) for n in names}
    order = sorted(names, key=lambda n: (mean[n], n))
    picks = [("worst", order[0]), ("median", order[len(order) // 2]), ("best", order[-1])]
    picks = list(dict((n, t) for t, n in picks).items())  # a tiny test split: an image once
    predicted = _predictions([runs[seeds[seed]] for _, seeds in arms], [n for n, _ in picks])
    picked = []
    for name, tag in picks:
        image, target, valid = predicted["inputs"][name]
        per_arm = [(label, predicted[i][name], table[name]) for i, ((label, _), table) in enumerate(zip(arms, tables))]
        picked.append((tag, {"name": name, "image": image, "target": target, "valid": valid, "arms": per_arm}))
    return ablation, arms, picked, seed


def _drawable(run: Run) -> bool:
    """A run whose test images can be redrawn: per-image results and its best.pt (deleted ones are skipped)."""
    return bool(run.per_image) and run.run.best.is_file()


def _predictions(arm_runs: list[Run], names: list[str]) -> dict:
    """{arm index: {image: predicted mask}, "inputs": {image: (RGB uint8, target, valid)}} from each run's best.pt
    on its own test split (its data settings), on the CPU."""
    import torch

    from seg.build import data_kwargs
    from seg.data import build_datasets, denormalize
    from seg.inference import load_trained_model, predict_probs

    out: dict = {"inputs": {}}
    datasets: dict[str, object] = {}  # arms that share data settings share one test split
    for i, run in enumerate(arm_runs):
        model, cfg = load_trained_model(run.run.best, torch.device("cpu"))
        kwargs = data_kwargs(cfg, splits=("test",))
        if repr(kwargs) not in datasets:
            datasets[repr(kwargs)] = build_datasets(**kwargs)["test"]
        dataset = datasets[repr(kwargs)]
        index = {n: k for k, n in enumerate(dataset.names)}
        out[i] = {}
        for name in names:
            image, mask = dataset[index[name]]
            out[i][name] = predict_probs(model, image[None])[0, 0].numpy() > cfg.threshold
            m = mask[0].numpy()
            rgb = (denormalize(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            out["inputs"].setdefault(name, (rgb, m == 1, m != 255))
    return out

