"""`python -m seg.data.inspect [overrides]`: a dataset's fingerprint, before any training.

Takes seg.train's config and overrides (`data=folder data.root=...`, `data.mask_values=...`, `data.folds=5
data.fold=0`, ...), reads every image header and every full-size mask of the splits that config makes, prints
image counts per split, size and aspect-ratio distributions, the foreground fraction (mean, min, max; empty
masks), mask value counts and every bad file, and writes the same as JSON into the cache folder
(seg.data.fingerprint). Stops with one line (exit 1) when a split is empty or no mask holds any foreground.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from seg.data.build import dataset_splits, layout_kwargs
from seg.data.fingerprint import compute, describe, fingerprint_path
from seg.data.validate import stat_check
from seg.errors import exit_on_user_error
from seg.files import atomic_write_text

__all__ = ["main", "inspect"]


def inspect(overrides: list[str]) -> tuple[dict, Path]:
    """The fingerprint of the dataset seg.train would read with `overrides`, and where it was written."""
    from seg.config import compose, typed_config

    cfg = typed_config(compose("train", overrides))
    data = cfg.data
    kwargs = layout_kwargs(data)
    layout, named, bad = dataset_splits(
        root=Path(data.root).expanduser().resolve(), layout=kwargs["layout"], folder=kwargs["folder"],
        synthetic=None if data.synthetic is None else {"n": data.synthetic.n, "seed": data.synthetic.seed},
        download=data.download, val_split=data.val_split, seed=cfg.seed, folds=data.folds, fold=data.fold,
        stratify=data.stratify, split_seed=data.split_seed,
    )  # fmt: skip
    present = {}
    for split, names in named.items():
        present[split], missing = stat_check(layout, names, split)
        bad += missing
    fp = compute(layout, present, bad)
    path = fingerprint_path(Path(cfg.paths.cache_dir), layout)
    atomic_write_text(path, json.dumps(fp, indent=1) + "\n")  # rendered again on every call: replaced, never followed
    return fp, path


def stop_reason(fp: dict) -> str | None:
    """Why this dataset cannot train (an empty split, no foreground in any mask), or None."""
    empty = [split for split, n in fp["images"].items() if n == 0]
    if empty:
        return (f"split {', '.join(empty)} of {fp['root']} has no usable image; check the split lists "
                "(data.splits.*, data.folds) and the bad files above")
    if fp["foreground_fraction"].get("max", 0.0) == 0.0:
        return f"no mask of {fp['root']} holds any foreground; check data.mask_values ({fp['layout']})"
    return None


def main(argv: list[str] | None = None) -> None:
    with exit_on_user_error():
        fp, path = inspect(list(sys.argv[1:] if argv is None else argv))
        print(describe(fp))
        print(f"Fingerprint written to {path}")
        reason = stop_reason(fp)
        if reason is not None:
            print(f"error: {reason}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
