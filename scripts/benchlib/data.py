"""Loader throughput (resized uint8 cache vs decoding every JPEG; the same sample in the folder layout, cached) and one
epoch split into data wait and compute.

Both run on the real Oxford-IIIT Pet sample (or `--sample`) through the suite's own pieces: the config a user
gets (`conf/train.yaml`, augmentation `basic`), `seg.build.build_training` for the datasets, loaders and model,
`seg.engine.fit.fit` for the epochs and `seg.training.test_pass` for the test pass.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from benchlib.common import SMALL_MODEL, Stat, Suite, seconds
from seg.data.oxford import export_folder, split_names
from seg.engine.fit import Hook, TrainState, fit
from seg.engine.runtime import reseed_loader
from seg.training import test_pass

EPOCH_SIZE = 128


def _real_data(sample: Path, size: int, cached: bool) -> list[str]:
    """Overrides: the sample at `size` px, from the resized cache or decoding every file each time."""
    return [f"data.root={sample}", f"data.image_size={size}", f"data.cache={str(cached).lower()}",
            "augmentation=basic", *SMALL_MODEL]


def folder_sample(sample: Path, out: Path) -> Path:
    """The Oxford-layout `sample` in the folder layout under `out` (made once), with its train/val/test lists."""
    folder = out / "folder-sample"
    if not (folder / "test.txt").is_file():
        export_folder(sample, folder, split_names(sample, None, 0))
    return folder


def _folder_data(folder: Path, size: int) -> list[str]:
    """Overrides: `folder_sample` at `size` px from the cache, read as the Oxford layout reads the sample."""
    lists = [f"data.splits.{split}={split}.txt" for split in ("train", "val", "test")]
    return ["data=folder", f"data.root={folder}", "data.uncertain=foreground", *lists, f"data.image_size={size}",
            "data.cache=true", "augmentation=basic", *SMALL_MODEL]


def measure_loader(suite: Suite, sample: Path, size: int, cached: bool, workers_list: list[int],
                   repeats: int, folder: Path | None = None) -> list[dict[str, Any]]:
    """Images/s of whole passes over the trainer's train loader (workers persist across epochs), reseeded per
    pass as `fit` does. The first pass is not timed: it starts the workers and reads the files into the OS
    page cache, for both sources. `folder`: the sample in the folder layout (`folder_sample`), cached: the
    rows' source is `folder cache`."""
    rows = []
    data = _real_data(sample, size, cached) if folder is None else _folder_data(folder, size)
    source = ("cache" if cached else "decode") if folder is None else "folder cache"
    for workers in workers_list:
        t = suite.training(*data, f"data.num_workers={workers}")

        def one_pass(epoch: int, t: Any = t) -> float:
            reseed_loader(t.train_loader, t.cfg.seed, epoch)
            start = time.perf_counter()
            for _ in t.train_loader:
                pass
            return time.perf_counter() - start

        one_pass(0)
        images = len(t.datasets["train"])
        rows.append({"size": size, "source": source, "workers": workers,
                     "batch": t.cfg.data.batch_size, "images": images,
                     "images_per_s": Stat.of([images / one_pass(epoch) for epoch in range(1, repeats + 1)]).to_json()})
    return rows


class TimedLoader:
    """A loader for `fit` that passes its batches through and adds up the seconds the loop waited for them."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.waited = 0.0

    @property
    def sampler(self) -> Any:  # what reseed_loader reseeds
        return self.loader.sampler

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        items = iter(self.loader)
        while True:
            start = time.perf_counter()
            item = next(items, None)
            self.waited += time.perf_counter() - start
            if item is None:
                return
            yield item


class EpochClock(Hook):
    """Records each epoch's seconds (fit's own `seconds`) and the part of them spent waiting for batches."""

    def __init__(self, loaders: list[TimedLoader]) -> None:
        self.loaders = loaders
        self.epochs: list[tuple[float, float]] = []  # (epoch seconds, data wait seconds)
        self._waited = 0.0

    def on_epoch(self, state: TrainState, row: dict[str, float], improved: bool) -> None:
        waited = sum(loader.waited for loader in self.loaders)
        self.epochs.append((row["seconds"], waited - self._waited))
        self._waited = waited


def measure_epoch(suite: Suite, sample: Path, cached: bool, workers: int, repeats: int,
                  limit: int | None) -> dict[str, Any]:
    """Seconds of an epoch of `fit` (train pass + val pass) at 128 px with the small model and the part of it
    spent waiting for batches (compute = the rest), then the test pass a job ends with (`evaluate_dataset`
    on the test split, as train's test after fit and seg.evaluate run it).

    `fit` runs `repeats` + 1 epochs; the first (worker start, first-step set-up) is not counted. `limit` caps
    the batches of each train and val pass (None: all).
    """
    limits = [] if limit is None else [f"trainer.limit_train_batches={limit}", f"trainer.limit_val_batches={limit}"]
    t = suite.training(*_real_data(sample, EPOCH_SIZE, cached), f"data.num_workers={workers}",
                       f"trainer.epochs={repeats + 1}", *limits)
    t = dataclasses.replace(t, train_loader=TimedLoader(t.train_loader), val_loader=TimedLoader(t.val_loader))
    clock = EpochClock([t.train_loader, t.val_loader])
    fit(t, TrainState(), [clock])
    epochs, waits = zip(*clock.epochs[1:])
    test_s = [seconds(lambda: test_pass(t), t.device) for _ in range(repeats)]
    return {
        "size": EPOCH_SIZE, "model": " ".join(SMALL_MODEL), "source": "cache" if cached else "decode",
        "workers": workers, "batch": t.cfg.data.batch_size, "train_images": len(t.datasets["train"]),
        "val_images": len(t.datasets["val"]), "train_batches": t.steps_per_epoch,
        "epoch_s": Stat.of(epochs).to_json(), "wait_s": Stat.of(waits).to_json(),
        "compute_s": Stat.of([e - w for e, w in zip(epochs, waits)]).to_json(),
        "wait_fraction": Stat.of([w / e for e, w in zip(epochs, waits)]).to_json(),
        "test_images": len(t.datasets["test"]), "test_s": Stat.of(test_s).to_json(),
    }
