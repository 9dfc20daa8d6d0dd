"""From a layout's listing to the train / val / test names: the val rule, and k-fold cross-validation.

- Without folds: val is the given val list, else every 10th trainval entry (`val_split` null: the reference
  reports' rule), else a `val_split` fraction of trainval drawn with `seed`.
- With `folds=K, fold=i`: train and val lists together are split into K folds (seeded by `split_seed`, so the
  partition is the same for every fold index and every training seed); fold i is val, the others are train, the
  test list is untouched. With `stratify`, samples are ranked by foreground fraction and each run of K
  consecutive samples is dealt to the K folds, so every fold spans the range of foreground fractions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from seg.data.layout import Listing
from seg.errors import ConfigError

__all__ = ["split_names", "fold_indices", "check_folds"]

Fractions = Callable[[list[str]], np.ndarray]
"""Names -> their masks' foreground fractions (float array; NaN where a mask cannot be read)."""


def check_folds(folds: int | None, fold: int | None, stratify: bool) -> None:
    """ConfigError unless (folds, fold) is (None, None) or (K >= 2, 0 <= i < K); stratify needs folds."""
    if folds is None:
        if fold is not None or stratify:
            key = "data.fold" if fold is not None else "data.stratify=true"
            raise ConfigError(f"{key} needs data.folds=K (the number of folds), e.g. data.folds=5 data.fold=0")
        return
    if fold is None or not 0 <= fold < folds:
        raise ConfigError(f"invalid config: data.fold={fold!r} with data.folds={folds}; allowed: an integer "
                          f"0..{folds - 1} (e.g. -m data.fold={','.join(str(i) for i in range(min(folds, 5)))})")


def fold_indices(n: int, folds: int, split_seed: int, strata: np.ndarray | None = None) -> np.ndarray:
    """(n,) int: the fold of each of n samples; fold sizes differ by at most one.

    strata: a value per sample (foreground fraction) to stratify by, or None for a plain seeded shuffle.
    """
    rng = np.random.default_rng(split_seed)
    if strata is None:
        order = rng.permutation(n)
    else:
        values = np.nan_to_num(np.asarray(strata, dtype=np.float64), nan=-1.0)
        order = np.lexsort((rng.random(n), values))  # by fraction, ties in random order
    fold = np.empty(n, dtype=np.int64)
    for start in range(0, n, folds):
        chunk = order[start:start + folds]
        fold[chunk] = rng.permutation(folds)[: len(chunk)]
    return fold


def split_names(listing: Listing, *, val_split: float | None, seed: int, folds: int | None = None,
                fold: int | None = None, stratify: bool = False, split_seed: int = 0,
                fractions: Fractions | None = None) -> dict[str, list[str]]:  # fmt: skip
    """{"train", "val", "test"} -> names, in list order (see the module docstring for the rules)."""
    check_folds(folds, fold, stratify)
    trainval = list(listing.trainval)
    if folds is not None:
        listed = set(trainval)
        pool = trainval + [n for n in (listing.val or []) if n not in listed]
        if len(pool) < folds:
            raise ConfigError(f"data.folds={folds} needs at least {folds} train+val images; the dataset has "
                              f"{len(pool)}")
        strata = None
        if stratify:
            if fractions is None:
                raise ConfigError("data.stratify=true needs the masks' foreground fractions")
            strata = fractions(pool)
        is_val = fold_indices(len(pool), folds, split_seed, strata) == fold
        trainval = pool
    elif listing.val is not None:
        return {"train": trainval, "val": list(listing.val), "test": list(listing.test)}
    elif val_split is None:
        is_val = np.arange(len(trainval)) % 10 == 0
    else:
        if not 0.0 < float(val_split) < 1.0:
            raise ConfigError(f"data.val_split={val_split!r} must be null or a float in (0, 1)")
        n_val = max(1, round(float(val_split) * len(trainval)))
        is_val = np.zeros(len(trainval), dtype=bool)
        is_val[np.random.default_rng(seed).permutation(len(trainval))[:n_val]] = True
    return {
        "train": [n for n, v in zip(trainval, is_val, strict=True) if not v],
        "val": [n for n, v in zip(trainval, is_val, strict=True) if v],
        "test": list(listing.test),
    }
