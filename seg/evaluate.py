"""Evaluate a checkpoint on a split: `python -m seg.evaluate ckpt=<best.pt> [data=... split=test]`.

Writes into `<run dir>/eval/<split>_<time>/`: results.json, results.md (the per-image Dice table of
the reference reports) and examples.png (image, ground truth, probability, prediction; the worst
cases and a seeded random few).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import hydra
import matplotlib
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from seg.config import data_kwargs, register_resolvers
from seg.data import build_datasets, denormalize
from seg.engine.distributed import (
    DistContext,
    ShardSampler,
    gather_objects,
    init_distributed,
    reduce_meter,
    shutdown_distributed,
)
from seg.engine.loop import batches
from seg.engine.runtime import make_loader, resolve_device
from seg.errors import SegError, exit_on_user_error
from seg.inference import load_trained_model, predict_probs
from seg.metrics import SegmentationMeter, summary_stats

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

log = logging.getLogger("seg.evaluate")
register_resolvers()


def evaluate_checkpoint(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Metrics of checkpoint `cfg.ckpt` on split `cfg.split`; writes results and the example grid."""
    ctx, device = init_distributed(cfg.strategy, resolve_device(cfg.device))
    model, train_cfg = load_trained_model(cfg.ckpt, device)
    data_cfg = OmegaConf.merge(train_cfg, {"data": cfg.data} if cfg.get("data") is not None else {})
    data_cfg.paths = cfg.paths
    data_cfg.augmentation = {"name": "none"}  # only eval splits are used; no train augmentation to build
    dataset = build_datasets(**data_kwargs(data_cfg))[cfg.split]
    if len(dataset) == 0:
        raise SegError(f"split {cfg.split!r} of {data_cfg.data.root} is empty")
    sampler = ShardSampler(dataset, ctx)  # each rank its share, no sample twice
    loader = make_loader(
        dataset,
        cfg.batch_size or data_cfg.data.batch_size,
        cfg.num_workers,
        False,
        device.type == "cuda",
        sampler,
    )
    loss_fn = hydra.utils.instantiate(train_cfg.loss)
    meter = SegmentationMeter(threshold=cfg.threshold, device=device, keep_per_image=True)

    inference_seconds = 0.0
    for images, masks in batches(loader, device, channels_last=False):
        started = time.perf_counter()
        with torch.no_grad():
            logits = model(images).float()
        if device.type == "cuda":
            torch.cuda.synchronize()
        inference_seconds += time.perf_counter() - started
        meter.update(logits, masks, loss_fn(logits, masks))

    per_image = _gather_per_image(meter, sampler, ctx, len(dataset))
    metrics = reduce_meter(meter, ctx)
    if not ctx.is_main:
        return {}
    results = {
        "checkpoint": str(Path(cfg.ckpt).resolve()),
        "model": train_cfg.model._target_.rsplit(".", 1)[-1],
        "data_root": str(data_cfg.data.root),
        "split": cfg.split,
        "loss": metrics["loss"],
        "dice": summary_stats(per_image),
        "dice_pooled": metrics["dice_pooled"],
        "iou_pooled": metrics["iou_pooled"],
        "inference_ms_per_image": 1000 * inference_seconds / len(sampler),
        "images_per_second": len(sampler) / inference_seconds if inference_seconds else float("nan"),
        "per_image": {name: float(d) for name, d in zip(dataset.names, per_image)},
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "results.md").write_text(results_table(results))
    _example_grid(model, dataset, per_image, cfg, device, out_dir / "examples.png")
    return results


def _gather_per_image(
    meter: SegmentationMeter, sampler: ShardSampler, ctx: DistContext, n: int
) -> np.ndarray:
    """Per-image Dice of the whole split in dataset order, collected from every rank."""
    per_image = np.empty(n)
    for indices, values in gather_objects((list(sampler.indices), meter.per_image().tolist()), ctx):
        per_image[indices] = values
    return per_image


def results_table(results: dict[str, Any]) -> str:
    """Markdown table of per-image Dice statistics, pooled scores and speed."""
    d = results["dice"]
    rows = [
        ("images", f"{d['count']}"),
        ("Dice mean", f"{d['mean']:.4f}"),
        ("Dice median", f"{d['median']:.4f}"),
        ("Dice std", f"{d['std']:.4f}"),
        ("Dice min", f"{d['min']:.4f}"),
        ("Dice max", f"{d['max']:.4f}"),
        ("Dice pooled", f"{results['dice_pooled']:.4f}"),
        ("IoU pooled", f"{results['iou_pooled']:.4f}"),
        ("loss", f"{results['loss']:.4f}"),
        ("inference ms / image", f"{results['inference_ms_per_image']:.2f}"),
    ]
    lines = [
        f"# {results['model']} on the {results['split']} split",
        "",
        f"Checkpoint: `{results['checkpoint']}`  ",
        f"Data: `{results['data_root']}`",
        "",
        f"| metric | {results['model']} |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows),
        "",
    ]
    return "\n".join(lines)


def _example_grid(model, dataset, per_image: np.ndarray, cfg: DictConfig, device, path: Path) -> None:
    """Rows of (image, ground truth, probability, prediction): the worst images, then random ones."""
    order = np.argsort(per_image, kind="stable")
    worst = list(order[: cfg.num_worst])
    rest = sorted(set(range(len(dataset))) - set(worst))
    rng = np.random.default_rng(cfg.seed)
    picked = worst + list(rng.choice(rest, size=min(cfg.num_random, len(rest)), replace=False))
    if not picked:
        return
    images, masks = zip(*(dataset[int(i)] for i in picked))
    probs = predict_probs(model, torch.stack(images).to(device)).cpu()
    fig, axes = plt.subplots(len(picked), 4, figsize=(10, 2.6 * len(picked)), squeeze=False)
    for row, (i, image, mask, prob) in enumerate(zip(picked, images, masks, probs)):
        kind = "worst" if row < len(worst) else "random"
        panels = [
            (denormalize(image).permute(1, 2, 0).numpy(), f"{dataset.names[i]} ({kind})"),
            (mask[0].numpy(), "ground truth"),
            (prob[0].numpy(), "probability"),
            ((prob[0] > cfg.threshold).numpy(), f"prediction, Dice {per_image[i]:.3f}"),
        ]
        for ax, (img, title) in zip(axes[row], panels):
            ax.imshow(img, cmap=None if img.ndim == 3 else "gray", vmin=0, vmax=1)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        with exit_on_user_error():
            results = evaluate_checkpoint(cfg, out_dir)
    finally:
        shutdown_distributed()
    if not results:  # ranks other than 0 under torchrun
        return
    print((out_dir / "results.md").read_text())
    print(f"Wrote {out_dir}/results.json, results.md and examples.png ({results['dice']['count']} images)")


if __name__ == "__main__":
    main()
