"""Evaluate a checkpoint on a split: `python -m seg.evaluate ckpt=<best.pt> [data.root=... split=test tta=flips]`.

`ckpt=[a.pt,b.pt,...]` (or `ensemble=<study dir> arm=<arm>`: the arm's completed seeds) scores the ensemble that
averages the models' probabilities; `tta=hflip|flips` averages over flipped views (see seg.inference).

Uses the checkpoint's own settings (image size, trimap border rule, threshold, loss) unless a key is set on
purpose, builds only the split it scores, and scores it with the same function as train's test after fit.
Writes into `<run>/eval/<split>_<time>/` (or `<paths.output_dir>/eval/...` for a checkpoint outside the output
directory): results.json, results.md, per_image.csv (Dice, TP, FP, FN per image) and examples.png, each created
new: a folder that already holds one of them (an earlier evaluation, a symlink) is refused before any work, and no
output is written through a symlink. With the checkpoint's `logger=wandb`, the evaluation is also a W&B run
(job_type eval) in its training run's group.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from seg.build import data_kwargs
from seg.config import CONF_DIR, register, typed_config
from seg.data import build_datasets, denormalize
from seg.engine.distributed import init_distributed, shutdown_distributed
from seg.engine.evaluation import Evaluation, evaluate_dataset
from seg.engine.runtime import Precision, freeze_imports, resolve_device
from seg.engine.tracking import track_evaluation
from seg.ensemble import checkpoint_paths, load_members
from seg.errors import SegError, exit_on_user_error
from seg.eval_settings import describe_sources, inherited_limits, setting_sources
from seg.files import OutputExists, write_new
from seg.inference import predict_probs
from seg.rundir import remove_if_unused
from seg.schema import LOSSES, EvaluateConfig, TrainConfig
from seg.viz import ExampleRow, example_grid

log = logging.getLogger("seg.evaluate")
register()
OUTPUTS = ("results.json", "results.md", "per_image.csv", "examples.png")
"""What an evaluation writes into its folder, each a new file."""


def refuse_existing_outputs(out_dir: Path) -> None:
    """OutputExists when `out_dir` already holds one of OUTPUTS (a file, a folder or a symlink, dangling or not):
    an evaluation never overwrites an earlier one, nor writes through a link."""
    there = [name for name in OUTPUTS if os.path.lexists(out_dir / name)]
    if there:
        raise OutputExists(f"{out_dir} already holds {', '.join(there)}; an evaluation writes a new folder and never "
                           "overwrites or follows what is there: give another hydra.run.dir, or leave it unset")


def effective_config(cfg: EvaluateConfig, trained: TrainConfig) -> TrainConfig:
    """The checkpoint's config with this command's data keys and threshold where they are set (not null)."""
    data = dataclasses.replace(trained.data, **{
        k: v for k, v in dataclasses.asdict(cfg.data).items() if v is not None and hasattr(trained.data, k)
    })  # fmt: skip
    if cfg.data.root is not None:  # a dataset given by path is read as it is, never generated
        data.synthetic = None
    return dataclasses.replace(
        trained, data=data, paths=cfg.paths, threshold=trained.threshold if cfg.threshold is None else cfg.threshold,
        logger=dataclasses.replace(trained.logger, name=(cfg.logger or trained.logger).name),
    )


def evaluate_checkpoint(cfg: EvaluateConfig, out_dir: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Metrics of checkpoint `cfg.ckpt` (or of the ensemble of checkpoints) with TTA `cfg.tta` on split `cfg.split`;
    writes results, per-image CSV and examples. `overrides`: the command line's, for the settings line."""
    refuse_existing_outputs(out_dir)  # before any work
    ctx, device = init_distributed(cfg.strategy, resolve_device(cfg.device))
    members = load_members(checkpoint_paths(cfg.ckpt, cfg.ensemble, cfg.arm), cfg.tta, device,
                           image_size=cfg.data.image_size, threshold=cfg.threshold)  # fmt: skip
    model, trained = members.model, members.trained
    run_cfg = effective_config(cfg, trained)
    sources, limits = setting_sources(cfg, run_cfg, overrides), inherited_limits(cfg, trained)
    log.info("Settings: %s", describe_sources(sources))
    for warning in limits:
        log.warning(warning)
    dataset = build_datasets(**data_kwargs(run_cfg, splits=(cfg.split,)))[cfg.split]
    if len(dataset) == 0:
        raise SegError(f"split {cfg.split!r} of {run_cfg.data.root} is empty")
    result = evaluate_dataset(
        model, dataset, loss_fn=LOSSES.build(run_cfg.loss), threshold=run_cfg.threshold,
        batch_size=cfg.data.batch_size or run_cfg.data.batch_size, num_workers=cfg.data.num_workers, device=device,
        precision=Precision.resolve("32", device), ctx=ctx,
    )  # fmt: skip
    if not ctx.is_main:
        return {}
    results = {
        "checkpoints": [str(p.resolve()) for p in members.paths],
        "tta": cfg.tta,
        "ensemble": None if cfg.ensemble is None else {"study": str(Path(cfg.ensemble).resolve()), "arm": cfg.arm},
        "model": run_cfg.model.name,
        "split": cfg.split,
        "data_root": str(Path(run_cfg.data.root).resolve()),
        "image_size": run_cfg.data.image_size,
        "uncertain": run_cfg.data.uncertain,
        "threshold": run_cfg.threshold,
        "images": len(dataset),
        "loss": result.loss,
        "dice": result.dice_stats(),
        "dice_pooled": result.dice_pooled,
        "iou_pooled": result.iou_pooled,
        "inference_ms_per_image": 1000 * result.seconds / len(dataset),
        "per_image": {name: float(d) for name, d in zip(result.names, result.dice)},
    }
    write_new(out_dir / "results.json", (json.dumps(results, indent=2) + "\n").encode())
    write_new(out_dir / "results.md", (results_table(results) + f"\nSettings: {describe_sources(sources)}\n"
                                       + "".join(f"\n**Warning:** {w}\n" for w in limits)).encode())
    result.write_per_image(out_dir / "per_image.csv")
    _examples(model, members.describe(), dataset, result, cfg, run_cfg, device, out_dir / "examples.png")
    track_evaluation(run_cfg, out_dir, cfg.split, {k: v for k, v in results.items() if k != "per_image"}, result,
                     {"inference_ms_per_image": results["inference_ms_per_image"]}, out_dir / "examples.png")
    return results


def results_table(results: dict[str, Any]) -> str:
    """Markdown: what was evaluated (checkpoint, split, data, size, threshold) and the per-image Dice table."""
    d = results["dice"]
    rows = [
        ("images", f"{d['count']}"), ("Dice mean", f"{d['mean']:.4f}"), ("Dice median", f"{d['median']:.4f}"),
        ("Dice std", f"{d['std']:.4f}"), ("Dice min", f"{d['min']:.4f}"), ("Dice max", f"{d['max']:.4f}"),
        ("Dice pooled", f"{results['dice_pooled']:.4f}"), ("IoU pooled", f"{results['iou_pooled']:.4f}"),
        ("loss", f"{results['loss']:.4f}"), ("inference ms / image", f"{results['inference_ms_per_image']:.2f}"),
    ]  # fmt: skip
    return "\n".join([
        f"# {results['model']} on the {results['split']} split",
        "",
        *(f"Checkpoint: `{c}`  " for c in results["checkpoints"]),
        f"Test-time augmentation: {results['tta']}  ",
        f"Data: `{results['data_root']}` ({results['images']} images at {results['image_size']} px, trimap border "
        f"as {results['uncertain']}), threshold {results['threshold']}",
        "",
        f"| metric | {results['model']} |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows),
        "",
    ])  # fmt: skip


def _examples(
    model, what: str, dataset, result: Evaluation, cfg: EvaluateConfig, run_cfg: TrainConfig, device, path: Path
) -> None:
    """examples.png: the worst images, then a seeded random few; the title says which run, split and Dice."""
    threshold = run_cfg.threshold
    order = np.argsort(result.dice, kind="stable")
    worst = [int(i) for i in order[: cfg.num_worst]]
    rest = sorted(set(range(len(dataset))) - set(worst))
    rng = np.random.default_rng(cfg.seed)
    picked = worst + [int(i) for i in rng.choice(rest, size=min(cfg.num_random, len(rest)), replace=False)]
    if not picked:
        return
    items = [dataset[i] for i in picked]
    probs = predict_probs(model, torch.stack([image for image, _ in items]).to(device))[:, 0].cpu().numpy()
    rows = []
    for i, (image, mask), prob in zip(picked, items, probs):  # one batch: as scored (batch norm layers see N > 1)
        m = mask[0].numpy()
        rows.append(ExampleRow(
            name=dataset.names[i], image=(denormalize(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8),
            target=m == 1, valid=m != 255, prob=prob, threshold=threshold, dice=float(result.dice[i]),
            tag="worst" if i in worst else "random",
        ))  # fmt: skip
    tta = "" if cfg.tta == "none" else f", TTA {cfg.tta}"
    title = (f"{run_cfg.name}, {what}{tta}: {cfg.split} split, mean Dice {result.dice.mean():.3f} over "
             f"{len(dataset)} images; the {len(worst)} worst, then {len(picked) - len(worst)} at random")
    example_grid(rows, path, title=title)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    freeze_imports()
    try:
        with exit_on_user_error():
            try:
                typed: EvaluateConfig = typed_config(cfg)
                results = evaluate_checkpoint(typed, out_dir, HydraConfig.get().overrides.task)
            except SegError:
                remove_if_unused(out_dir)  # a refused checkpoint, split or dataset leaves no folder behind
                raise
    finally:
        shutdown_distributed()
    if not results:  # ranks other than 0 under torchrun
        return
    print((out_dir / "results.md").read_text())
    print(f"Wrote {out_dir}/results.json, results.md, per_image.csv and examples.png ({results['images']} images)")


if __name__ == "__main__":
    main()
