"""The issue's targets, checked against the results, and bench.md (markdown tables of bench.json)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchlib.common import Stat, num
from seg.markdown import markdown_table

MFU_TARGET = 0.8  # unet at 128 px: training step >= 80% of the matmul ceiling
LOADER_TARGET = 5.0  # cached loader >= 5x decoding every JPEG
FOLDER_TARGET = 0.9  # the folder layout's cached loader >= 90% of the Oxford layout's (issue 22)
WAIT_TARGET = 0.10  # data wait < 10% of an epoch
BUSY = 0.10  # a target is not judged when other processes took more than this share of the CPU


def loader_ratios(rows: list[dict[str, Any]]) -> dict[tuple[int, int], float]:
    """(size, workers) -> median images/s from the cache / median images/s decoding every time."""
    rate = {(r["size"], r["workers"], r["source"]): r["images_per_s"]["median"] for r in rows}
    return {(size, workers): rate[size, workers, "cache"] / rate[size, workers, "decode"]
            for size, workers, source in rate if source == "cache" and (size, workers, "decode") in rate}


def folder_ratios(rows: list[dict[str, Any]]) -> dict[tuple[int, int], float]:
    """(size, workers) -> median images/s of the folder layout's cache / the Oxford layout's cache."""
    rate = {(r["size"], r["workers"], r["source"]): r["images_per_s"]["median"] for r in rows}
    return {(size, workers): rate[size, workers, "folder cache"] / rate[size, workers, "cache"]
            for size, workers, source in rate if source == "folder cache" and (size, workers, "cache") in rate}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's three targets, each with what was measured and whether it is met.

    `met` is None (not judged) for a --quick run (one short repeat) or when other processes took more than
    BUSY of the CPU during the section: such a figure is a check that the bench runs, not a finding.
    """
    meta = results["meta"]
    rows = []

    def judge(section: str, target: str, measured: str, met: bool) -> None:
        other = meta["other_cpu_share"].get(section)
        why = "--quick" if meta["quick"] else (f"machine busy ({other:.0%})" if other and other > BUSY else None)
        rows.append({"target": target, "measured": measured, "met": None if why else met, "not_judged": why})

    unet = [r for r in results.get("model", []) if (r["model"], r["size"], r["precision"]) == ("unet", 128, "fp32")]
    if unet:
        best = max(unet, key=lambda r: r["mfu"]["median"])
        judge("model", f"unet 128 px training step >= {MFU_TARGET:.0%} of the matmul ceiling",
              f"{best['mfu']['median']:.0%} ({best['layout']})", best["mfu"]["median"] >= MFU_TARGET)
    ratios = loader_ratios(results.get("loader", []))
    if ratios:
        judge("loader", f"cached loader >= {LOADER_TARGET:.0f}x decoding each time",
              ", ".join(f"{num(v)}x ({s} px, {w} workers)" for (s, w), v in ratios.items()),
              min(ratios.values()) >= LOADER_TARGET)
    folder = folder_ratios(results.get("loader", []))
    if folder:
        judge("loader", f"folder layout's cached loader >= {FOLDER_TARGET:.0%} of the Oxford layout's",
              ", ".join(f"{v:.0%} ({s} px, {w} workers)" for (s, w), v in folder.items()),
              min(folder.values()) >= FOLDER_TARGET)
    default = [r for r in results.get("epoch", []) if r["source"] == "cache"]
    if default:
        worst = max(default, key=lambda r: r["wait_fraction"]["median"])
        judge("epoch", f"data wait < {WAIT_TARGET:.0%} of an epoch (cache)",
              f"{worst['wait_fraction']['median']:.1%} ({worst['workers']} workers)",
              worst["wait_fraction"]["median"] < WAIT_TARGET)
    return rows


def _met(t: dict[str, Any]) -> str:
    if t["met"] is None:
        return f"not judged: {t['not_judged']}"
    return "yes" if t["met"] else "**no**"


Column = tuple[str, Callable[[dict[str, Any]], str]]
"""A table column: its header and how a result row fills its cell."""


def _stat(key: str, scale: float = 1.0, unit: str = "") -> Callable[[dict[str, Any]], str]:
    return lambda r: Stat.from_json(r[key]).text(scale, unit) if key in r else ""


def _plain(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda r: num(r[key]) if isinstance(r[key], float) else str(r[key])


def _section(title: str, text: str, columns: list[Column], rows: list[dict[str, Any]]) -> list[str]:
    table = markdown_table([h for h, _ in columns], [[cell(r) for _, cell in columns] for r in rows])
    return [f"## {title}", "", text, "", *table.splitlines(), ""]


def _loader_columns(rows: list[dict[str, Any]]) -> list[Column]:
    ratios, folder = loader_ratios(rows), folder_ratios(rows)

    def ratio(r: dict[str, Any]) -> str:
        key = r["size"], r["workers"]
        if r["source"] == "folder cache":
            return f"{folder[key]:.0%} of the Oxford cache" if key in folder else ""
        return f"{num(ratios[key])}x" if r["source"] == "cache" and key in ratios else ""

    return [("px", _plain("size")), ("source", _plain("source")), ("workers", _plain("workers")),
            ("batch", _plain("batch")), ("images", _plain("images")), ("img/s", _stat("images_per_s")),
            ("cache / decode (folder / Oxford)", ratio)]


def render(results: dict[str, Any]) -> str:
    """bench.md: the conditions, the targets and one table per section that was run."""
    meta = results["meta"]
    other = meta.get("other_cpu_share", {})
    busy = ", ".join(f"{k} {v:.0%}" for k, v in other.items() if v is not None)
    device = meta.get("gpu", meta["cpu"])  # "gpu" only on CUDA
    lines = [
        f"# seg benchmark: {meta['device']} ({device})",
        "",
        f"{meta['date']}, torch {meta['torch']}, {meta['cpu_count']} CPUs, {meta['torch_threads']} torch threads"
        f" ({meta['cpu_capability']}), repeats {meta['repeats']}{', --quick' if meta['quick'] else ''}. "
        f"Each figure: median (min–max) over the repeats. Load average at start {num(meta['load_average_start'])}; "
        f"CPU used by other processes per section: {busy or 'n/a'} (0% = a quiet machine)."
        + "".join(f" {k}={v}." for k, v in meta["env"].items())
        + (f" Loader and epoch data: {meta['sample']}." if meta.get("sample") else ""),
        "",
    ]
    if results["targets"]:
        met = [("target", _plain("target")), ("measured", _plain("measured")), ("met", _met)]
        lines += _section("Targets", "The targets of `make bench`'s issue, judged only on a full run on a quiet"
                          f" machine (other processes under {BUSY:.0%} of the CPU).", met, results["targets"])
    if "ceiling" in results:
        lines += _section("1. Matmul ceiling", "Square n x n matmul, same threads as training.",
                          [("precision", _plain("precision")), ("n", _plain("n")), ("GFLOP/s", _stat("gflops"))],
                          results["ceiling"])
    if "model" in results:
        lines += _section(
            "2. Training step",
            "The suite's training step (`build_training` of the default config with that model, size, batch and"
            " layout; `train_one_epoch`) on random batches. GFLOP/img: forward + backward, counted by"
            " `torch.utils.flop_counter`. MFU: achieved GFLOP/s / matmul GFLOP/s measured right after each repeat"
            " (column `vs`).",
            [("model", _plain("model")), ("px", _plain("size")), ("batch", _plain("batch")),
             ("layout", _plain("layout")), ("precision", _plain("precision")), ("GFLOP/img", _plain("gflop_per_image")),
             ("img/s", _stat("images_per_s")), ("GFLOP/s", _stat("gflops")), ("MFU", _stat("mfu", 100, "%")),
             ("vs", _plain("ceiling"))],
            results["model"])
    if "loader" in results:
        lines += _section(
            "3. Train loader",
            "Whole passes over the train split (augmentation `basic`) through the trainer's loader, whose workers"
            " persist across epochs (the first, untimed pass starts them). `cache`: resized uint8 cache, `decode`:"
            " every JPEG and trimap decoded each time, `folder cache`: the same sample in the folder layout"
            " (images/ + masks/, `data=folder`), cached.",
            _loader_columns(results["loader"]), results["loader"])
    if "epoch" in results:
        lines += _section(
            "4. Epoch",
            "Epochs of `fit` (train pass + val pass) at 128 px, the default config otherwise; the first epoch is"
            " not counted. Data wait: time the loop waited for the next batch; compute: the rest. Test pass:"
            " `evaluate_dataset` on the test split, what a job ends with (train's test after fit).",
            [("model", _plain("model")), ("source", _plain("source")), ("workers", _plain("workers")),
             ("batch", _plain("batch")), ("train batches", _plain("train_batches")), ("epoch s", _stat("epoch_s")),
             ("data wait s", _stat("wait_s")), ("compute s", _stat("compute_s")),
             ("wait %", _stat("wait_fraction", 100, "%")), ("test images", _plain("test_images")),
             ("test pass s", _stat("test_s"))],
            results["epoch"])
    if "overhead" in results:
        lines += _section(
            "5. Sweep job overhead",
            "Separate processes; a job trains one batch of a 4-channel UNet at 32 px on cached synthetic data, so"
            " its wall time is what any sweep job pays besides training. Epoch loop: the part spent inside fit's"
            " epoch loop (summary.json's `seconds`).",
            [("stage", _plain("stage")), ("wall s", _stat("seconds")), ("epoch loop s", _stat("epoch_loop_s")),
             ("outside the loop s", _stat("outside_loop_s"))],
            results["overhead"])
    return "\n".join(lines)
