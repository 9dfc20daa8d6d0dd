"""`build_datasets`: from plain config values to the train / val / test datasets of any layout."""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from seg.data.cache import load_or_build
from seg.data.dataset import FileSource, PetSegmentation
from seg.data.fingerprint import check_and_log
from seg.data.folder import FolderLayout
from seg.data.images import BadImageError
from seg.data.layout import FOREGROUND, LAYOUTS, Layout
from seg.data.oxford import OxfordLayout, download_oxford, missing_layout, subsample
from seg.data.splits import check_folds, split_names
from seg.data.transforms import build_augmentation
from seg.data.trimap import check_uncertain
from seg.data.validate import BadSample, check_on_bad_sample, header_check, report_bad_samples, stat_check
from seg.errors import ConfigError, folder_or_error

__all__ = ["build_datasets", "check_data_keys", "layout_kwargs", "make_layout", "foreground_fractions",
           "dataset_splits"]


def make_layout(layout: str, root: Path, folder: dict[str, Any] | None = None) -> Layout:
    """The `layout` (oxford | folder) of the dataset at `root`; `folder`: FolderLayout's keyword arguments.

    ConfigError for folder-only settings (mask values, split lists) given with the Oxford layout."""
    folder = folder or {}
    if layout == "folder":
        return FolderLayout(root, **folder)
    if layout != "oxford":
        raise ConfigError(f"data.layout={layout!r} is not one of {', '.join(LAYOUTS)}")
    given = [f"data.{k}" for k in ("mask_values", "mask_suffix") if folder.get(k)]
    given += [f"data.splits.{k}" for k, v in (folder.get("lists") or {}).items() if v is not None]
    if given:
        raise ConfigError(f"{', '.join(given)} only apply to data=folder (this dataset is in the Oxford layout)")
    return OxfordLayout(root)


def layout_kwargs(data: Any) -> dict[str, Any]:
    """The layout and fold arguments of `build_datasets` from a checked `data` config node (seg.schema.DataConfig)."""
    folder = {"mask_values": None if data.mask_values is None else dict(data.mask_values),
              "mask_suffix": data.mask_suffix, "lists": dataclasses.asdict(data.splits),
              "test_split": data.test_split, "split_seed": data.split_seed}  # fmt: skip
    return {"layout": data.layout, "folder": folder, "folds": data.folds, "fold": data.fold,
            "stratify": data.stratify, "split_seed": data.split_seed}


def check_data_keys(data: Any) -> None:
    """ConfigError for `data` keys that do not fit together (folds, mask map, folder-only keys with the Oxford
    layout), checked with the config before any work (seg.config.check_values); reads no file."""
    check_folds(data.folds, data.fold, data.stratify)
    kwargs = layout_kwargs(data)
    make_layout(kwargs["layout"], Path(data.root), kwargs["folder"])


def foreground_fractions(layout: Layout, names: list[str]) -> np.ndarray:
    """(len(names),) float64: the foreground fraction of each full-size mask (NaN where it cannot be read)."""
    def fraction(name: str) -> float:
        try:
            return float((layout.read_labels(layout.mask_path(name)) == FOREGROUND).mean())
        except (BadImageError, OSError):
            return float("nan")

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return np.array(list(pool.map(fraction, names)), dtype=np.float64)


def dataset_splits(*, root: Path, layout: str, folder: dict[str, Any] | None, synthetic: dict[str, int] | None,
                   download: bool, val_split: float | None, seed: int, folds: int | None, fold: int | None,
                   stratify: bool, split_seed: int,
                   ) -> tuple[Layout, dict[str, list[str]], list[BadSample]]:  # fmt: skip
    """The dataset at `root` (generated or downloaded first if asked), its train/val/test names and the files
    that listing it found bad. Arguments as for `build_datasets`."""
    check_folds(folds, fold, stratify)
    data = make_layout(layout, root, folder)
    if synthetic is not None and layout == "oxford":
        from seg.data.synthetic import ensure_synthetic  # lazy: keeps `python -m seg.data.synthetic` clean

        ensure_synthetic(root, n=int(synthetic["n"]), seed=int(synthetic.get("seed", 0)))
    elif download and layout == "oxford" and missing_layout(root):
        download_oxford(root)
    listing = data.listing()
    named = split_names(listing, val_split=val_split, seed=seed, folds=folds, fold=fold, stratify=stratify,
                        split_seed=split_seed, fractions=lambda names: foreground_fractions(data, names))  # fmt: skip
    return data, named, list(listing.bad)


def build_datasets(*, root: str | Path, image_size: int, augmentation: dict[str, Any],
                   uncertain: str = "foreground", val_split: float | None = None, limit: int | None = None,
                   on_bad_sample: str = "skip", download: bool = False, cache_dir: str | Path | None = None,
                   seed: int = 0, synthetic: dict[str, int] | None = None,
                   splits: tuple[str, ...] = ("train", "val", "test"), layout: str = "oxford",
                   folder: dict[str, Any] | None = None, folds: int | None = None, fold: int | None = None,
                   stratify: bool = False, split_seed: int = 0) -> dict[str, Dataset]:  # fmt: skip
    """Build {"train", "val", "test"} datasets of (image (3, S, S) float32, mask (1, S, S) float32).

    Args:
        root: the dataset folder: images/ and annotations/ (layout oxford), images/ and masks/ (layout folder).
        image_size: S, the side of the square images and masks.
        augmentation: the `augmentation` config group as a plain dict (`name` plus the preset's knobs);
            applied to train only, val and test use `none`.
        uncertain: what the uncertain label (trimap border; folder masks' `ignore`) becomes:
            foreground | background | ignore | random.
        val_split: None -> val is every 10th trainval entry (i % 10 == 0); a float in (0, 1) -> that
            fraction of trainval drawn with `seed` (a folder dataset's val list, or folds, take precedence).
        limit: at most this many samples per split, evenly spaced over the list (None: all).
        on_bad_sample: skip (one warning listing every bad file) | raise (BadSamplesError listing them).
        download: fetch the dataset with torchvision when `root` holds none (root must end in
            /oxford-iiit-pet).
        cache_dir: where resized uint8 copies are kept and shared (None: decode every item each time).
        seed: seeds the random val split only (augmentation is seeded per item, see `PetSegmentation`).
        synthetic: {"n": int, "seed": int} -> generate synthetic pets at `root` if it holds no dataset.
        splits: the splits to build (seg.evaluate builds only the one it scores).
        layout: oxford | folder (seg.data.layout); `folder`: FolderLayout's keyword arguments (mask_values,
            mask_suffix, lists, test_split, split_seed).
        folds, fold, stratify, split_seed: k-fold cross-validation (seg.data.splits): fold `fold` of `folds`
            is val, seeded by `split_seed`, stratified by foreground fraction when `stratify`.

    Raises:
        DatasetNotFoundError: no dataset at `root` (the message names the path and the fixes).
        SplitListError: an image listed in two splits.
        ConfigError: an unknown uncertain / on_bad_sample / augmentation value; `cache_dir` is a file; bad folds.
        SegError: a built split is empty, or the training masks hold no foreground at all.
    """
    check_uncertain(uncertain)
    check_on_bad_sample(on_bad_sample)
    check_folds(folds, fold, stratify)
    train_augment = build_augmentation(augmentation, image_size)
    eval_augment = build_augmentation({"name": "none"}, image_size)
    root = Path(root).expanduser().resolve()
    if cache_dir is not None:
        cache_dir = folder_or_error(cache_dir, "paths.cache_dir")
    data, named, all_bad = dataset_splits(
        root=root, layout=layout, folder=folder, synthetic=synthetic, download=download, val_split=val_split,
        seed=seed, folds=folds, fold=fold, stratify=stratify, split_seed=split_seed,
    )  # fmt: skip
    datasets: dict[str, PetSegmentation] = {}
    for split, listed in named.items():
        if split not in splits:
            continue
        names, bad = stat_check(data, listed, split)
        names = subsample(names, limit)
        if cache_dir is not None:
            source, names, decode_bad = load_or_build(cache_dir, data, split, names, image_size)
        else:
            names, decode_bad = header_check(data, names, split)
            source = FileSource(data, names, image_size)
        all_bad += bad + decode_bad
        augment = train_augment if split == "train" else eval_augment
        datasets[split] = PetSegmentation(names, source, augment, uncertain)
    report_bad_samples(all_bad, on_bad_sample, root)
    check_and_log(datasets, root, len(all_bad))
    return datasets
