"""`build_datasets`: from plain config values to the train / val / test datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from seg.data.cache import load_or_build
from seg.data.dataset import FileSource, PetSegmentation
from seg.data.oxford import check_layout, download_oxford, missing_layout, split_names, subsample
from seg.data.transforms import build_augmentation
from seg.data.trimap import check_uncertain
from seg.data.validate import BadSample, check_on_bad_sample, header_check, report_bad_samples, stat_check
from seg.errors import folder_or_error

__all__ = ["build_datasets"]


def build_datasets(*, root: str | Path, image_size: int, augmentation: dict[str, Any],
                   uncertain: str = "foreground", val_split: float | None = None, limit: int | None = None,
                   on_bad_sample: str = "skip", download: bool = False, cache_dir: str | Path | None = None,
                   seed: int = 0, synthetic: dict[str, int] | None = None,
                   splits: tuple[str, ...] = ("train", "val", "test")) -> dict[str, Dataset]:
    """Build {"train", "val", "test"} datasets of (image (3, S, S) float32, mask (1, S, S) float32).

    Args:
        root: folder with images/ and annotations/ (the Oxford layout).
        image_size: S, the side of the square images and masks.
        augmentation: the `augmentation` config group as a plain dict (`name` plus the preset's knobs);
            applied to train only, val and test use `none`.
        uncertain: what the trimap border becomes: foreground | background | ignore | random.
        val_split: None -> val is every 10th trainval entry (i % 10 == 0); a float in (0, 1) -> that
            fraction of trainval drawn with `seed`.
        limit: at most this many samples per split, evenly spaced over the list (None: all).
        on_bad_sample: skip (one warning listing every bad file) | raise (BadSamplesError listing them).
        download: fetch the dataset with torchvision when `root` holds none (root must end in
            /oxford-iiit-pet).
        cache_dir: where resized uint8 copies are kept and shared (None: decode every item each time).
        seed: seeds the random val split only (augmentation is seeded per item, see `PetSegmentation`).
        synthetic: {"n": int, "seed": int} -> generate synthetic pets at `root` if it holds no dataset.
        splits: the splits to build (seg.evaluate builds only the one it scores).

    Raises:
        DatasetNotFoundError: no dataset at `root` (the message names the path and the fixes).
        SplitListError: an image listed in both trainval.txt and test.txt.
        ConfigError: an unknown uncertain / on_bad_sample / augmentation value; `cache_dir` is a file.
    """
    check_uncertain(uncertain)
    check_on_bad_sample(on_bad_sample)
    train_augment = build_augmentation(augmentation, image_size)
    eval_augment = build_augmentation({"name": "none"}, image_size)
    root = Path(root).expanduser().resolve()
    if cache_dir is not None:
        cache_dir = folder_or_error(cache_dir, "paths.cache_dir")
    if synthetic is not None:
        from seg.data.synthetic import ensure_synthetic  # lazy: keeps `python -m seg.data.synthetic` clean

        ensure_synthetic(root, n=int(synthetic["n"]), seed=int(synthetic.get("seed", 0)))
    elif download and missing_layout(root):
        download_oxford(root)
    check_layout(root)

    datasets: dict[str, Dataset] = {}
    all_bad: list[BadSample] = []
    for split, listed in split_names(root, val_split, seed).items():
        if split not in splits:
            continue
        names, bad = stat_check(root, listed, split)
        names = subsample(names, limit)
        if cache_dir is not None:
            source, names, decode_bad = load_or_build(cache_dir, root, split, names, image_size)
        else:
            names, decode_bad = header_check(root, names, split)
            source = FileSource(root, names, image_size)
        all_bad += bad + decode_bad
        augment = train_augment if split == "train" else eval_augment
        datasets[split] = PetSegmentation(names, source, augment, uncertain)
    report_bad_samples(all_bad, on_bad_sample, root)
    return datasets
