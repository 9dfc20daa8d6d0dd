"""Score a model on a dataset: the one evaluation of seg (train's test after fit, seg.evaluate, the bench).

Per image it keeps the Dice and the TP/FP/FN pixel counts, so that studies can pair runs image by image.
Under torchrun each rank scores its shard (no padding) and the results are gathered in dataset order.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from seg.engine.distributed import DistContext, ShardSampler, gather_objects, reduce_meter
from seg.engine.loop import batches
from seg.engine.runtime import Precision, make_loader
from seg.files import atomic_write_text, csv_text
from seg.metrics import SegmentationMeter, summary_stats

PER_IMAGE_COLUMNS = ["image", "dice", "tp", "fp", "fn"]


@dataclass
class Evaluation:
    """The result of `evaluate_dataset`."""

    names: list[str]
    table: np.ndarray  # (N, 4) in dataset order: Dice, TP, FP, FN per image
    loss: float
    dice_pooled: float
    iou_pooled: float
    seconds: float  # time in the model's forward passes (this rank)

    @property
    def dice(self) -> np.ndarray:
        return self.table[:, 0]

    def metrics(self) -> dict[str, float]:
        """loss, dice (mean per image), dice_pooled, iou_pooled and count: what summary.json's `test` holds."""
        return {"loss": self.loss, "dice": float(self.dice.mean()) if len(self.dice) else float("nan"),
                "dice_pooled": self.dice_pooled, "iou_pooled": self.iou_pooled, "count": len(self.names)}  # fmt: skip

    def dice_stats(self) -> dict[str, float]:
        return summary_stats(self.dice)

    def write_per_image(self, path: Path) -> None:
        """One CSV row per image: name, Dice, TP, FP, FN (replaced atomically, never written through a symlink)."""
        rows = zip(self.names, self.table)
        atomic_write_text(path, csv_text(PER_IMAGE_COLUMNS, [[name, f"{d:.6f}", int(tp), int(fp), int(fn)]
                                                             for name, (d, tp, fp, fn) in rows]))  # fmt: skip


def read_per_image(path: Path) -> dict[str, tuple[float, int, int, int]]:
    """{image: (Dice, TP, FP, FN)} of a per-image CSV written by `Evaluation.write_per_image`."""
    with path.open(newline="") as f:
        return {r["image"]: (float(r["dice"]), int(r["tp"]), int(r["fp"]), int(r["fn"])) for r in csv.DictReader(f)}


@torch.no_grad()
def evaluate_dataset(
    model: nn.Module,
    dataset: Dataset,
    *,
    loss_fn: nn.Module,
    threshold: float,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    precision: Precision,
    channels_last: bool = False,
    ctx: DistContext | None = None,
) -> Evaluation:
    """Loss, per-image Dice / TP / FP / FN and pooled Dice / IoU of `model` (eval mode) on every item of `dataset`."""
    ctx = ctx or DistContext()
    sampler = ShardSampler(dataset, ctx)
    loader = make_loader(dataset, batch_size, num_workers, False, device.type == "cuda", sampler)
    meter = SegmentationMeter(threshold=threshold, device=device, keep_per_image=True)
    model.eval()
    seconds = 0.0
    for images, masks in batches(loader, device, channels_last):
        started = time.perf_counter()
        with precision.autocast():
            logits = model(images).float()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - started
        meter.update(logits, masks, loss_fn(logits, masks))
    table = np.empty((len(dataset), 4))
    for indices, rows in gather_objects((list(sampler.indices), meter.per_image_table().tolist()), ctx):
        table[list(indices)] = np.asarray(rows).reshape(-1, 4)
    totals = reduce_meter(meter, ctx)
    return Evaluation(list(dataset.names), table, totals["loss"], totals["dice_pooled"], totals["iou_pooled"], seconds)
