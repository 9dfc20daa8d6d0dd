"""`make bench-pruners`: what each Optuna pruner saves on the real sample, and what it costs in the best val Dice.

For each pruner (none, median, successive_halving, hyperband) and each sampler seed, one lr search
(`hparams_search=lr_optuna`, TPE) in its own study: by default 20 trials x 5 epochs, 64 px, UNet base_channels 8, on
../shared/data/oxford-iiit-pet-sample. Per search: epochs and training seconds of all trials (from the study's
optimization_results.yaml), wall seconds of the whole search, and the best val Dice found. `none` is the reference:
a pruner's saving is 1 - its epochs (seconds) / the unpruned search's of the same seed, and its best val Dice is
within the unpruned spread when its mean is at least the lowest best val Dice of the unpruned searches.
Hyperband assigns trials to brackets by Python's string hash, so the searches run with PYTHONHASHSEED=0.

Writes <out>/bench_pruners.json and <out>/bench_pruners.md. The full run trains up to 4 x 3 x 100 epochs (hours on
2 CPU cores); smaller for checking:

    python scripts/bench_pruners.py --trials 3 --epochs 2 --seeds 0 --image-size 32 --limit 16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from seg.rundir import MULTIRUN, OPTUNA

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLE = (REPO / ".." / "shared" / "data" / "oxford-iiit-pet-sample").resolve()
PRUNERS = ("none", "median", "successive_halving", "hyperband")


def run_search(args: argparse.Namespace, pruner: str, seed: int) -> dict[str, Any]:
    """One lr search of `pruner` with sampler seed `seed` in a fresh study; its figures."""
    study = f"bench_{pruner}_s{seed}"
    out = args.out / "runs"
    overrides = [
        "hparams_search=lr_optuna", f"name={study}", "logger=none", f"data.root={args.data}",
        f"data.image_size={args.image_size}", f"model.base_channels={args.base_channels}",
        f"trainer.epochs={args.epochs}", f"hydra.sweeper.n_trials={args.trials}",
        f"hydra.sweeper.sampler.seed={seed}", f"pruning.pruner={pruner}", f"paths.output_dir={out}",
    ]  # fmt: skip
    if args.limit:
        overrides.append(f"data.limit={args.limit}")
    overrides += args.overrides
    db = out / OPTUNA / f"{study}.db"  # the default storage of hparams_search (seg.rundir.optuna_storage_for)
    if db.exists():
        sys.exit(f"error: {db} exists (an earlier bench): pass another --out, or remove it to measure again")
    env = {**os.environ, "PYTHONHASHSEED": "0", "WANDB_MODE": "disabled"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "seg.train", "-m", *overrides], cwd=REPO, env=env,
                          capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"error: the {pruner} search (seed {seed}) failed:\n{proc.stderr[-2000:]}")
    [results_file] = (out / MULTIRUN / study).glob("*/optimization_results.yaml")
    results = yaml.safe_load(results_file.read_text())
    compute = results["compute"]
    print(f"{pruner:>18} seed {seed}: best val Dice {results['best_value']:.4f}, {compute['epochs_trained']} epochs, "
          f"{compute['pruned']} of {compute['trials']} trials pruned, {wall:.0f} s", flush=True)  # fmt: skip
    return {
        "pruner": pruner,
        "seed": seed,
        "best_val_dice": results["best_value"],
        "best_params": results["best_params"],
        "trials": compute["trials"],
        "pruned": compute["pruned"],
        "epochs_trained": compute["epochs_trained"],
        "seconds_trained": compute["seconds_trained"],
        "wall_seconds": round(wall, 1),
    }


def summarise(runs: list[dict[str, Any]], pruners: list[str]) -> list[dict[str, Any]]:
    """Per pruner: means over seeds, savings against `none` of the same seed, and the unpruned-spread check."""
    by = {(r["pruner"], r["seed"]): r for r in runs}
    reference = [r for r in runs if r["pruner"] == "none"]
    floor = min((r["best_val_dice"] for r in reference), default=None)
    rows = []
    for pruner in pruners:
        mine = [r for r in runs if r["pruner"] == pruner]
        best = [r["best_val_dice"] for r in mine]

        def saved(key: str, mine: list[dict[str, Any]] = mine) -> float | None:
            pairs = [(r[key], by[("none", r["seed"])][key]) for r in mine if ("none", r["seed"]) in by]
            return statistics.mean(1 - a / b for a, b in pairs) if pairs else None

        rows.append({
            "pruner": pruner,
            "seeds": len(mine),
            "pruned_trials": statistics.mean(r["pruned"] for r in mine),
            "epochs_trained": statistics.mean(r["epochs_trained"] for r in mine),
            "seconds_trained": statistics.mean(r["seconds_trained"] for r in mine),
            "wall_seconds": statistics.mean(r["wall_seconds"] for r in mine),
            "epochs_saved": saved("epochs_trained"),
            "seconds_saved": saved("seconds_trained"),
            "wall_saved": saved("wall_seconds"),
            "best_val_dice": best,
            "best_val_dice_mean": statistics.mean(best),
            "within_unpruned_spread": None if floor is None else statistics.mean(best) >= floor,
        })  # fmt: skip
    return rows


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    pct = lambda v: "-" if v is None else f"{v:.0%}"  # noqa: E731
    lines = [
        f"Pruners on {args.data.name}: {args.trials} trials x {args.epochs} epochs per search, {args.image_size} px, "
        f"UNet base_channels {args.base_channels}, TPE seeds {' '.join(map(str, args.seeds))}"
        + (f", {' '.join(args.overrides)}" if args.overrides else "") + "; means over seeds, "
        "savings against `none` with the same seed.",
        "",
        "| pruner | pruned trials | epochs trained | epochs saved | training s | s saved | search wall s | wall saved "
        "| best val Dice per seed | mean | within unpruned spread |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        best = " ".join(f"{v:.4f}" for v in r["best_val_dice"])
        within = {None: "-", True: "yes", False: "no"}[r["within_unpruned_spread"]]
        lines.append(
            f"| {r['pruner']} | {r['pruned_trials']:.1f} | {r['epochs_trained']:.1f} | {pct(r['epochs_saved'])} | "
            f"{r['seconds_trained']:.0f} | {pct(r['seconds_saved'])} | {r['wall_seconds']:.0f} | "
            f"{pct(r['wall_saved'])} | {best} | {r['best_val_dice_mean']:.4f} | {within} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pruners", nargs="+", default=list(PRUNERS), choices=PRUNERS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--base-channels", type=int, default=8)
    parser.add_argument("--limit", type=int, default=None, help="images per split (data.limit), for a quick check")
    parser.add_argument("--data", type=Path, default=REAL_SAMPLE)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_pruners")
    parser.add_argument("overrides", nargs="*", help="more overrides for every search, e.g. data.batch_size=16")
    args = parser.parse_args()
    if not (args.data / "annotations" / "trainval.txt").is_file():
        sys.exit(f"error: no Oxford-IIIT Pet data at {args.data}; pass --data <folder with images/ and annotations/>")
    args.out = args.out.resolve()
    runs = [run_search(args, pruner, seed) for seed in args.seeds for pruner in args.pruners]
    rows = summarise(runs, args.pruners)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "machine": {"cpus": os.cpu_count(), "platform": sys.platform}, "runs": runs, "pruners": rows}  # fmt: skip
    (args.out / "bench_pruners.json").write_text(json.dumps(report, indent=2))
    (args.out / "bench_pruners.md").write_text(markdown(rows, args))
    print(markdown(rows, args))
    print(f"Written: {args.out / 'bench_pruners.md'}, {args.out / 'bench_pruners.json'}")


if __name__ == "__main__":
    main()
