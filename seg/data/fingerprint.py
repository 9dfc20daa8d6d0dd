"""A dataset's fingerprint (as nnU-Net prints one): counts, sizes, foreground, mask values and bad files.

Two forms:
- `check_and_log`, at the end of every `build_datasets` (so at the start of training): one log line from what
  the build already holds (split sizes; foreground fractions from the cached labels), and one-line stops for a
  dataset that cannot train (an empty split, training masks with no foreground at all).
- `compute` / `describe`, for `python -m seg.data.inspect`: every image's header (size, aspect ratio) and every
  full-size mask (foreground fraction, raw value counts); written as `fingerprint-<dataset>-<key>.json` into the
  cache folder (`paths.cache_dir`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from seg.data.dataset import ArraySource, PetSegmentation
from seg.data.images import BadImageError, header_size
from seg.data.layout import FOREGROUND, Layout
from seg.data.validate import BadSample
from seg.errors import SegError

__all__ = ["check_and_log", "compute", "describe", "fingerprint_path"]

log = logging.getLogger(__name__)


def _cached_fractions(dataset: PetSegmentation, chunk: int = 256) -> np.ndarray | None:
    """(N,) foreground fraction of each cached (resized) mask, read `chunk` rows at a time; None without a cache."""
    if not isinstance(dataset.source, ArraySource):
        return None
    _, labels = dataset.source.arrays()
    return np.concatenate([(labels[i:i + chunk] == FOREGROUND).mean(axis=(1, 2)) for i in range(0, len(labels), chunk)]
                          or [np.zeros(0)]).astype(np.float64)  # fmt: skip


def check_and_log(datasets: dict[str, PetSegmentation], root: Path, n_bad: int) -> None:
    """Log the short fingerprint; SegError (one line) for an empty split or training masks without foreground."""
    for split, dataset in datasets.items():
        if len(dataset) == 0:
            raise SegError(f"split {split} of {root} has no usable image; check the split lists and the bad-file "
                           f"warning (python -m seg.data.inspect data.root={root} lists everything)")
    parts = [", ".join(f"{split} {len(d)}" for split, d in datasets.items()) + " images"]
    train = datasets.get("train")
    fractions = None if train is None else _cached_fractions(train)
    if fractions is not None:
        if not fractions.any():
            raise SegError(f"no training mask of {root} ({len(fractions)} images) holds any foreground; check "
                           "data.mask_values (null reads 0 as background, 1 and 255 as foreground)")
        parts.append(f"train foreground {fractions.mean():.1%} of pixels (min {fractions.min():.1%}, max "
                     f"{fractions.max():.1%}, {int((fractions == 0).sum())} empty masks)")
    parts.append(f"{n_bad} bad files" if n_bad else "no bad files")
    log.info("Data %s: %s", root, "; ".join(parts))


def _describe_sample(layout: Layout, name: str) -> dict[str, Any]:
    """Header size of the image, foreground fraction and raw value counts of its full-size mask."""
    width, height = header_size(layout.image_path(name))
    path = layout.mask_path(name)
    labels = layout.read_labels(path)
    return {"width": width, "height": height, "foreground": float((labels == FOREGROUND).mean()),
            "values": layout.value_counts(path)}


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "min": float(array.min()), "median": float(np.median(array)),
            "max": float(array.max())}


def compute(layout: Layout, named: dict[str, list[str]], bad: list[BadSample]) -> dict[str, Any]:
    """The full fingerprint of the splits `named` (every image header and full-size mask is read)."""
    names = [(split, n) for split, listed in named.items() for n in listed]

    def describe_one(item: tuple[str, str]) -> dict[str, Any] | BadSample:
        try:
            return _describe_sample(layout, item[1])
        except (BadImageError, OSError) as e:
            return BadSample(item[1], item[0], str(e))

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        described = list(pool.map(describe_one, names))
    bad = list(bad) + [d for d in described if isinstance(d, BadSample)]
    good = [d for d in described if not isinstance(d, BadSample)]
    bad_names = {(b.split, b.name) for b in bad}
    counts = {split: sum((split, n) not in bad_names for n in listed) for split, listed in named.items()}
    values: Counter[str] = Counter()
    for d in good:
        values.update(d["values"])
    fractions = [d["foreground"] for d in good]
    return {
        "root": str(layout.root), "layout": layout.identity(), "images": counts,
        "width": _stats([d["width"] for d in good]), "height": _stats([d["height"] for d in good]),
        "aspect_ratio": _stats([d["width"] / d["height"] for d in good]),
        "foreground_fraction": {**_stats(fractions), "empty_masks": sum(f == 0 for f in fractions)},
        "mask_value_pixels": dict(sorted(values.items(), key=lambda kv: -kv[1])),
        "bad_files": [str(b) for b in bad],
    }


def describe(fp: dict[str, Any]) -> str:
    """The fingerprint as a few readable lines."""
    def dist(stats: dict[str, float], fmt: str = ".0f") -> str:
        return ", ".join(f"{k} {v:{fmt}}" for k, v in stats.items()) or "-"

    fg = fp["foreground_fraction"]
    total = sum(fp["mask_value_pixels"].values()) or 1
    lines = [
        f"Dataset {fp['root']} ({fp['layout']})",
        "  images: " + ", ".join(f"{s} {n}" for s, n in fp["images"].items()),
        f"  width: {dist(fp['width'])}",
        f"  height: {dist(fp['height'])}",
        f"  aspect ratio (w/h): {dist(fp['aspect_ratio'], '.2f')}",
        f"  foreground fraction: {dist({k: v for k, v in fg.items() if k != 'empty_masks'}, '.3f')}; "
        f"{fg['empty_masks']} empty masks",
        "  mask values (share of pixels): "
        + ", ".join(f"{v}: {n / total:.1%}" for v, n in list(fp["mask_value_pixels"].items())[:12]),
        f"  bad files: {len(fp['bad_files'])}",
        *(f"    {b}" for b in fp["bad_files"]),
    ]
    return "\n".join(lines)


def fingerprint_path(cache_dir: Path, layout: Layout) -> Path:
    """Where the fingerprint of this dataset (root and mask map) is written, beside the cache entries."""
    key = hashlib.sha256(json.dumps([str(layout.root.resolve()), layout.identity()]).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"fingerprint-{layout.root.name}-{key}.json"
