"""The issue's targets, checked against the results, and bench.md (markdown tables of bench.json)."""

from __future__ import annotations

from typing import Any

from benchlib.common import Stat, num
from seg.sweep.results import markdown_table

MFU_TARGET = 0.8  # unet at 128 px: training step >= 80% of the matmul ceiling
LOADER_TARGET = 5.0  # cached loader >= 5x decoding every JPEG
WAIT_TARGET = 0.10  # data wait < 10% of an epoch


def _text(stat: dict[str, Any], scale: float = 1.0, unit: str = "") -> str:
    return Stat.from_json(stat).text(scale, unit)


def loader_ratios(rows: list[dict[str, Any]]) -> dict[tuple[int, int], float]:
    """(size, workers) -> median images/s from the cache / median images/s decoding every time."""
    rate = {(r["size"], r["workers"], r["source"]): r["images_per_s"]["median"] for r in rows}
    return {(size, workers): rate[size, workers, "cache"] / rate[size, workers, "decode"]
            for size, workers, source in rate if source == "cache" and (size, workers, "decode") in rate}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's three targets, each with what was measured and whether it is met."""
    rows = []
    unet = [r for r in results.get("model", []) if (r["model"], r["size"], r["precision"]) == ("unet", 128, "fp32")]
    if unet:
        best = max(unet, key=lambda r: r["mfu"]["median"])
        rows.append({"target": f"unet 128 px training step >= {MFU_TARGET:.0%} of the matmul ceiling",
                     "measured": f"{best['mfu']['median']:.0%} ({best['layout']})",
                     "met": best["mfu"]["median"] >= MFU_TARGET})
    ratios = loader_ratios(results.get("loader", []))
    if ratios:
        rows.append({"target": f"cached loader >= {LOADER_TARGET:.0f}x decoding each time",
                     "measured": ", ".join(f"{num(v)}x ({s} px, {w} workers)" for (s, w), v in ratios.items()),
                     "met": min(ratios.values()) >= LOADER_TARGET})
    default = [r for r in results.get("epoch", []) if r["source"] == "cache"]
    if default:
        worst = max(default, key=lambda r: r["wait_fraction"]["median"])
        rows.append({"target": f"data wait < {WAIT_TARGET:.0%} of an epoch (cache)",
                     "measured": f"{worst['wait_fraction']['median']:.1%} ({worst['workers']} workers)",
                     "met": worst["wait_fraction"]["median"] < WAIT_TARGET})
    return rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [*markdown_table(header, rows).splitlines(), ""]


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
        + "".join(f" {k}={v}." for k, v in meta["env"].items()),
        "",
    ]
    if results["targets"]:
        lines += ["## Targets", ""]
        lines += _table(["target", "measured", "met"],
                        [[t["target"], t["measured"], "yes" if t["met"] else "**no**"] for t in results["targets"]])
    if "ceiling" in results:
        lines += ["## 1. Matmul ceiling", "", "Square n x n matmul, same threads as training.", ""]
        lines += _table(["precision", "n", "GFLOP/s"],
                        [[r["precision"], str(r["n"]), _text(r["gflops"])] for r in results["ceiling"]])
    if "model" in results:
        lines += ["## 2. Training step", "",
                  "The suite's `train_one_epoch` (default loss and AdamW) on random batches. GFLOP/img: forward +"
                  " backward, counted by `torch.utils.flop_counter`. MFU: achieved GFLOP/s / matmul GFLOP/s"
                  " measured right after each repeat (column `vs`). Conv share: the part of a step spent in"
                  " convolution ops (torch.profiler, CPU); conv MFU = MFU / conv share, i.e. how close the"
                  " convolution kernels alone come to the ceiling. Faults: minor page faults per step (0 when freed"
                  " memory is reused, `trainer.reuse_host_memory`).", ""]
        lines += _table(
            ["model", "px", "batch", "layout", "precision", "GFLOP/img", "img/s", "GFLOP/s", "MFU", "vs",
             "conv share", "conv MFU", "faults MB/step"],
            [[r["model"], str(r["size"]), str(r["batch"]), r["layout"], r["precision"], num(r["gflop_per_image"]),
              _text(r["images_per_s"]), _text(r["gflops"]), _text(r["mfu"], 100, "%"), r["ceiling"],
              "" if r.get("conv_share") is None else f"{r['conv_share']:.0%}",
              "" if r.get("conv_mfu") is None else _text(r["conv_mfu"], 100, "%"),
              num(r["page_fault_mb_per_step"])]
             for r in results["model"]])
    if "loader" in results:
        ratios = loader_ratios(results["loader"])
        lines += ["## 3. Train loader", "",
                  "Whole passes over the train split of the real sample (augmentation `basic`) through the"
                  " trainer's loader, whose workers persist across epochs; first batch s: what each pass waits"
                  " for its first batch; start-up s: the first batch of the first pass (worker start), paid once"
                  " per run. `cache`: resized uint8 cache, `decode`: every JPEG and trimap decoded each time.", ""]
        lines += _table(
            ["px", "source", "workers", "batch", "images", "img/s", "first batch s", "start-up s",
             "cache / decode"],
            [[str(r["size"]), r["source"], str(r["workers"]), str(r["batch"]), str(r["images"]),
              _text(r["images_per_s"]), _text(r["first_batch_s"]), num(r["start_up_s"]),
              f"{num(ratios[r['size'], r['workers']])}x" if r["source"] == "cache" and
              (r["size"], r["workers"]) in ratios else ""]
             for r in results["loader"]])
    if "epoch" in results:
        lines += ["## 4. Epoch", "",
                  "Train pass + val pass on the real sample at 128 px, the default config otherwise. Data wait:"
                  " time the loop waited for the next batch; compute: the rest.", ""]
        lines += _table(
            ["model", "source", "workers", "batch", "train batches", "epoch s", "data wait s", "compute s",
             "wait %"],
            [[r["model"], r["source"], str(r["workers"]), str(r["batch"]), str(r["train_batches"]),
              _text(r["epoch_s"]), _text(r["wait_s"]), _text(r["compute_s"]), _text(r["wait_fraction"], 100, "%")]
             for r in results["epoch"]])
    if "overhead" in results:
        lines += ["## 5. Sweep job overhead", "",
                  "Separate processes; a job trains one batch of a 4-channel UNet at 32 px on cached synthetic"
                  " data, so its wall time is what any sweep job pays besides training. Epoch loop: the part"
                  " spent inside fit's epoch loop (from summary.json).", ""]
        lines += _table(["stage", "wall s", "epoch loop s", "outside the loop s"],
                        [[r["stage"], _text(r["seconds"]), *(_text(r[k]) if k in r else "" for k in
                                                              ("epoch_loop_s", "outside_loop_s"))]
                         for r in results["overhead"]])
    return "\n".join(lines)
