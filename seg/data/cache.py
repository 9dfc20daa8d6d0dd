"""A resized uint8 copy of one split, built once and shared by every later run and every sweep job.

    <cache_dir>/<split>-<S>px-<key>/images.npy    (N, S, S, 3) uint8 RGB
                                  /trimaps.npy   (N, S, S) uint8 labels 1/2/3 (seg.data.layout: the raw trimap)
                                  /meta.json     names (aligned with N) and the samples that failed

It serves every layout (seg.data.layout). `key` hashes the absolute root, the layout's identity (a folder
dataset's mask value map), the split, S, the sample names and every file's size and mtime, so any change of the
data makes a new entry. The labels keep the uncertain class, so `data.uncertain` is applied at load time and
one cache serves every mode. An entry is built with seg.data.staging: it appears complete or
not at all (concurrent builders: the first wins), and what a killed build left is removed by the next
process that uses the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from seg.data.dataset import ArraySource, load_sample
from seg.data.images import BadImageError
from seg.data.layout import Layout
from seg.data.oxford import OxfordLayout
from seg.data.staging import build_atomically, remove_stale_builds
from seg.data.validate import BadSample

__all__ = ["CACHE_VERSION", "cache_entry", "load_or_build"]

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the decode/resize path changes


def _fingerprint(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def cache_entry(cache_dir: Path, layout: Layout, split: str, names: list[str], image_size: int) -> Path:
    """The folder that holds (or will hold) this exact split of this exact data at size S."""
    digest = hashlib.sha256()
    head = [CACHE_VERSION, str(layout.root.resolve()), split, image_size]
    if not isinstance(layout, OxfordLayout):  # Oxford entries keep the keys they had before layouts existed
        head.append(layout.identity())
    digest.update(json.dumps(head).encode())
    for name in names:
        digest.update(json.dumps([name, _fingerprint(layout.image_path(name)),
                                  _fingerprint(layout.mask_path(name))]).encode())
    return cache_dir / f"{split}-{image_size}px-{digest.hexdigest()[:16]}"


def _read(entry: Path) -> tuple[ArraySource, list[str], list[BadSample]] | None:
    """The entry's source, names and failed samples, or None if it is absent or incomplete."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        source = ArraySource(entry / "images.npy", entry / "trimaps.npy")
        if len(source) != len(meta["names"]):
            return None
    except (OSError, ValueError, KeyError):
        return None
    return source, meta["names"], [BadSample(**b) for b in meta["bad"]]


def _compact(file: Path, array: np.ndarray, keep: list[int], chunk: int = 256) -> None:
    """Replace `file` (holding `array`) by the rows `keep` of it, chunk by chunk (bounded memory)."""
    tmp_file = file.with_name(f"compact-{file.name}")
    shape = (len(keep), *array.shape[1:])
    out = np.lib.format.open_memmap(tmp_file, mode="w+", dtype=array.dtype, shape=shape)
    for start in range(0, len(keep), chunk):
        out[start:start + chunk] = array[keep[start:start + chunk]]
    out.flush()
    del out
    os.replace(tmp_file, file)


def _decode_into(images: np.ndarray, trimaps: np.ndarray, layout: Layout, names: list[str], image_size: int,
                 index: int) -> str | None:
    """Decode sample `index` into row `index` of the arrays; the error message if it fails."""
    try:
        images[index], trimaps[index] = load_sample(layout, names[index], image_size)
    except (BadImageError, OSError) as e:
        return str(e)
    return None


def _build(tmp: Path, layout: Layout, split: str, names: list[str], image_size: int) -> None:
    """Decode every sample into `tmp` (threads: PIL releases the GIL while decoding and resizing)."""
    n, s = len(names), image_size
    images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(n, s, s, 3))
    trimaps = np.lib.format.open_memmap(tmp / "trimaps.npy", mode="w+", dtype=np.uint8, shape=(n, s, s))
    decode = functools.partial(_decode_into, images, trimaps, layout, names, image_size)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        errors = list(pool.map(decode, range(n)))
    del decode
    keep = [i for i, error in enumerate(errors) if error is None]
    bad = [{"name": names[i], "split": split, "reason": e} for i, e in enumerate(errors) if e is not None]
    if len(keep) < n:  # rewrite without the failed rows
        _compact(tmp / "images.npy", images, keep)
        _compact(tmp / "trimaps.npy", trimaps, keep)
    del images, trimaps  # flush and close the maps
    meta = {"version": CACHE_VERSION, "root": str(layout.root), "layout": layout.identity(), "split": split,
            "image_size": image_size, "names": [names[i] for i in keep], "bad": bad}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))


def load_or_build(cache_dir: str | Path, layout: Layout | Path, split: str, names: list[str],
                  image_size: int) -> tuple[ArraySource, list[str], list[BadSample]]:
    """Reuse the cache entry of this split or build it (removing what killed builds left in `cache_dir`).

    `layout`: the dataset's layout; a bare root folder means the Oxford layout.

    Returns:
        (source of the cached arrays, names kept (aligned with its rows), samples that failed to decode).
    """
    cache_dir = Path(cache_dir)
    layout = OxfordLayout(layout) if isinstance(layout, Path) else layout
    if cache_dir.is_dir():
        remove_stale_builds(cache_dir)
    entry = cache_entry(cache_dir, layout, split, names, image_size)
    found = _read(entry)
    if found is not None:
        return found
    log.info("Caching %d %s samples of %s at %dpx into %s", len(names), split, layout.root, image_size, entry)
    if entry.exists() and _read(entry) is None:  # damaged, or from before entries were renamed into place
        shutil.rmtree(entry, ignore_errors=True)
    build_atomically(entry, functools.partial(_build, layout=layout, split=split, names=names, image_size=image_size))
    found = _read(entry)
    if found is None:
        raise RuntimeError(f"cache entry {entry} unreadable right after building it")
    return found
