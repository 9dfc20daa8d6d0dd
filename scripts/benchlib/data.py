"""Loader throughput (resized uint8 cache vs decoding every JPEG) and one epoch split into data wait and compute.

Both run on the real Oxford-IIIT Pet sample through the suite's own pieces: the config a user gets
(`conf/train.yaml`, augmentation `basic`), `build_datasets`, `make_loader`, `reseed_loader`, `batches`,
`train_one_epoch` and `evaluate`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch.utils.data import Dataset

from benchlib.common import REAL_SAMPLE, Stat, TrainingParts, seconds, suite_config
from seg.config import data_kwargs
from seg.data import build_datasets
from seg.engine.loop import batches, evaluate
from seg.engine.runtime import make_loader, reseed_loader
from seg.metrics import SegmentationMeter

T = TypeVar("T")

EPOCH_MODEL = ["model=unet", "model.base_channels=16"]
"""The fixed small model of the epoch section (UNet 16-32-64-128-256, ~1.9M parameters)."""
WARMUP_BATCHES = 2


def _real_data(size: int, cached: bool, cache_dir: Path) -> list[str]:
    """Overrides: the real sample at `size` px, from the cache under `cache_dir` or decoded every time."""
    return [f"data.root={REAL_SAMPLE}", f"data.image_size={size}", f"data.cache={str(cached).lower()}",
            f"paths.cache_dir={cache_dir}", "augmentation=basic"]


def measure_loader(size: int, cached: bool, workers_list: list[int], repeats: int, cache_dir: Path,
                   device: torch.device) -> list[dict[str, Any]]:
    """Images/s of whole passes over the train loader (the trainer's: workers persist across epochs), the
    seconds to the first batch of each pass, and the start-up: the first batch of the very first pass
    (worker start), which a run pays once per loader.

    That first pass is not timed otherwise: it also reads the files into the OS page cache, for both.
    """
    cfg = suite_config(_real_data(size, cached, cache_dir))
    train: Dataset = build_datasets(**data_kwargs(cfg))["train"]
    rows = []
    for workers in workers_list:
        loader = make_loader(train, cfg.data.batch_size, workers, True, device.type == "cuda")

        def one_pass(epoch: int, loader: Iterable = loader) -> tuple[float, float]:
            """(seconds to the first batch, seconds of the whole pass)."""
            reseed_loader(loader, cfg.seed, epoch)
            start, first = time.perf_counter(), None
            for _ in loader:
                first = first or time.perf_counter() - start
            return first, time.perf_counter() - start

        start_up, _ = one_pass(0)
        firsts, totals = zip(*(one_pass(epoch) for epoch in range(1, repeats + 1)))
        rows.append({"size": size, "source": "cache" if cached else "decode", "workers": workers,
                     "batch": cfg.data.batch_size, "images": len(train), "start_up_s": start_up,
                     "images_per_s": Stat.of([len(train) / t for t in totals]).to_json(),
                     "first_batch_s": Stat.of(firsts).to_json()})
    return rows


class WaitClock(Iterator[T]):
    """Passes the items of an iterable through and adds up the seconds spent waiting for each."""

    def __init__(self, items: Iterable[T]) -> None:
        self.items = iter(items)
        self.waited = 0.0

    def __next__(self) -> T:
        start = time.perf_counter()
        try:
            return next(self.items)
        finally:
            self.waited += time.perf_counter() - start


def measure_epoch(cached: bool, workers: int, repeats: int, cache_dir: Path, device: torch.device,
                  limit: int | None) -> dict[str, Any]:
    """Seconds of one epoch (train pass + val pass) at 128 px with `EPOCH_MODEL`, and the part of it
    spent waiting for batches (loader, device copy); compute = the rest. A short untimed warm-up first.

    `limit` caps the batches of each pass (None: all).
    """
    cfg = suite_config([*_real_data(128, cached, cache_dir), *EPOCH_MODEL])
    channels_last = bool(cfg.trainer.channels_last)
    parts = TrainingParts.build(cfg, device, channels_last, cfg.trainer.precision)
    datasets = build_datasets(**data_kwargs(cfg))
    pin = device.type == "cuda"
    train_loader = make_loader(datasets["train"], cfg.data.batch_size, workers, True, pin)
    val_loader = make_loader(datasets["val"], cfg.data.batch_size, workers, False, pin)
    totals, waits = [], []
    for epoch in range(repeats + 1):  # epoch 0: a warm-up of WARMUP_BATCHES, not timed
        reseed_loader(train_loader, cfg.seed, epoch)
        epoch_limit = WARMUP_BATCHES if epoch == 0 else limit
        train_data = WaitClock(batches(train_loader, device, channels_last, epoch_limit))
        val_data = WaitClock(batches(val_loader, device, channels_last, epoch_limit))

        def run(train_data: Iterable = train_data, val_data: Iterable = val_data, epoch: int = epoch) -> None:
            parts.train(train_data, device, epoch)
            evaluate(parts.model, val_data, parts.loss_fn, parts.precision, SegmentationMeter(device=device))

        total = seconds(run, device)
        if epoch > 0:
            totals.append(total)
            waits.append(train_data.waited + val_data.waited)
    n_batches = len(train_loader) if limit is None else min(limit, len(train_loader))
    return {
        "size": 128, "model": " ".join(EPOCH_MODEL), "source": "cache" if cached else "decode",
        "workers": workers, "batch": cfg.data.batch_size, "train_images": len(datasets["train"]),
        "val_images": len(datasets["val"]), "train_batches": n_batches,
        "epoch_s": Stat.of(totals).to_json(), "wait_s": Stat.of(waits).to_json(),
        "compute_s": Stat.of([t - w for t, w in zip(totals, waits)]).to_json(),
        "wait_fraction": Stat.of([w / t for t, w in zip(totals, waits)]).to_json(),
    }
