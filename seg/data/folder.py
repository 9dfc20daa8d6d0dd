"""The folder layout: any binary segmentation dataset as images/ + masks/ with matching stems.

    <root>/images/<stem>.<any image extension>     photos; sub-folders allowed (the stem keeps them: a/x, b/x)
    <root>/masks/<stem><mask_suffix>.<any ext>     masks, mirroring images/ (values: seg.data.masks)

Splits: `data.splits.{train,val,test}` are text files of stems (one per line, `#` comments; a relative path is
read under data.root). Without a test list, test is the images in no list when a train list is given, else a
seeded `data.test_split` fraction of all images (`data.split_seed`). Without a val list, val comes from train as
for Oxford (seg.data.splits). Everything else is the shared loader's (seg.data.layout): this is its second layout.

Listing finds the quirks that need no decoding and names each file: a stray non-image file, an image without a
mask or a mask without an image, two files with one stem, a listed stem without files. Decoding (the cache, or
the header checks) finds the rest: unreadable files, a mask of another size, mask values outside the map.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from seg.data.layout import Listing
from seg.data.masks import MaskMap
from seg.data.oxford import DatasetNotFoundError, SplitListError, read_split_list
from seg.data.validate import BadSample
from seg.errors import ConfigError

__all__ = ["FolderLayout", "IMAGE_SUFFIXES", "LIST_NAMES"]

IMAGE_SUFFIXES = frozenset(ext.lower() for ext in Image.registered_extensions())
"""File extensions PIL reads (the content decides the format: a GIF named .jpg is read as a GIF)."""
LIST_NAMES = ("train", "val", "test")


class FolderLayout:
    """A folder dataset as a `seg.data.layout.Layout` (picklable: plain paths and dicts)."""

    mask_word = "mask"

    def __init__(self, root: Path, mask_values: dict[Any, str] | None = None, mask_suffix: str = "",
                 lists: dict[str, str | None] | None = None, test_split: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        self.mask_map = MaskMap.parse(mask_values)
        self.mask_suffix = mask_suffix
        self.lists = {k: v for k, v in (lists or {}).items() if v is not None}
        self.test_split, self.split_seed = test_split, split_seed
        self._images: dict[str, Path] = {}
        self._masks: dict[str, Path] = {}

    def image_path(self, name: str) -> Path:
        return self._images.get(name) or self.root / "images" / f"{name}.jpg"

    def mask_path(self, name: str) -> Path:
        return self._masks.get(name) or self.root / "masks" / f"{name}{self.mask_suffix}.png"

    def read_labels(self, path: Path) -> np.ndarray:
        return self.mask_map.read_labels(path)

    def value_counts(self, path: Path) -> dict[str, int]:
        return self.mask_map.value_counts(path)

    def identity(self) -> str:
        return f"folder: {self.mask_map.describe()}"

    def listing(self) -> Listing:
        """Scan images/ and masks/, read the split lists, draw the random test split if there is no list."""
        missing = [p for p in ("images", "masks") if not (self.root / p).is_dir()]
        if missing:
            raise DatasetNotFoundError(
                f"No folder dataset at {self.root}: missing {', '.join(f'{m}/' for m in missing)}. To fix: set "
                "data.root=/path/to/your/dataset, the folder holding images/ and masks/ (same stems, e.g. "
                "images/a.jpg + masks/a.png)"
            )
        images, bad = self._scan("images", "")
        masks, bad_masks = self._scan("masks", self.mask_suffix)
        bad += bad_masks
        ambiguous = {b.name for b in bad}
        self._images, self._masks = {}, {}
        for name in sorted((images.keys() | masks.keys()) - ambiguous):
            if name not in masks:
                bad.append(BadSample(name, "", f"mask missing (no masks/{name}{self.mask_suffix}.* for "
                                               f"{images[name]})"))
            elif name not in images:
                bad.append(BadSample(name, "", f"image missing (no images/{name}.* for {masks[name]})"))
            else:
                self._images[name], self._masks[name] = images[name], masks[name]
        usable = list(self._images)
        if not usable:
            raise DatasetNotFoundError(f"No image of {self.root}/images has a mask in {self.root}/masks with the "
                                       f"same stem{' and suffix ' + self.mask_suffix if self.mask_suffix else ''}")
        return self._split(usable, bad)

    def _scan(self, folder: str, suffix: str) -> tuple[dict[str, Path], list[BadSample]]:
        """{stem: file} of the images (or masks) under `folder`, and the files that cannot be used.

        Hidden files and folders (`.DS_Store`, `._x.jpg` AppleDouble files) are not looked at."""
        found: dict[str, list[Path]] = defaultdict(list)
        bad = []
        top = self.root / folder
        for path in sorted(top.rglob("*")):
            relative = path.relative_to(top)
            if any(part.startswith(".") for part in relative.parts) or path.is_dir():
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                bad.append(BadSample(f"{folder}/{relative.as_posix()}", "", "not an image file (left out)"))
                continue
            stem = relative.with_suffix("").as_posix()
            if suffix:
                if not stem.endswith(suffix):
                    bad.append(BadSample(f"{folder}/{relative.as_posix()}", "", f"no {suffix!r} suffix (left out)"))
                    continue
                stem = stem[: -len(suffix)]
            found[stem].append(path)
        for stem, paths in found.items():
            if len(paths) > 1:
                files = ", ".join(p.name for p in paths)
                bad.append(BadSample(stem, "", f"{len(paths)} files in {folder}/ with this stem ({files}); rename one"))
        return {s: p[0] for s, p in found.items() if len(p) == 1}, bad

    def _split(self, usable: list[str], bad: list[BadSample]) -> Listing:
        present, named_bad = set(usable), {b.name for b in bad}
        lists = {}
        for split, file in self.lists.items():
            names = read_split_list(self._list_path(split, file))
            bad += [BadSample(n, split, f"listed in {file} but has no image and mask") for n in names
                    if n not in present and n not in named_bad]
            lists[split] = [n for n in names if n in present]
        _check_disjoint(self.root, lists)
        if "test" in lists:
            test = lists["test"]
        elif "train" in lists:
            listed = set(lists["train"]) | set(lists.get("val", []))
            test = [n for n in usable if n not in listed]
        else:
            rng = np.random.default_rng(self.split_seed)
            n_test = max(1, round(self.test_split * len(usable)))
            chosen = set(rng.permutation(len(usable))[:n_test].tolist())
            test = [n for i, n in enumerate(usable) if i in chosen]
        taken = set(test) | set(lists.get("val", []))
        trainval = lists["train"] if "train" in lists else [n for n in usable if n not in taken]
        return Listing(trainval, test, lists.get("val"), bad)

    def _list_path(self, split: str, file: str) -> Path:
        path = Path(file).expanduser()
        for candidate in ([path] if path.is_absolute() else [self.root / path, path]):
            if candidate.is_file():
                return candidate
        raise ConfigError(f"data.splits.{split}={file}: no such file (a relative path is read under {self.root})")


def _check_disjoint(root: Path, lists: dict[str, list[str]]) -> None:
    """SplitListError when a stem is in two split lists (it would be trained on and scored, or selected on)."""
    splits = list(lists)
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            shared = sorted(set(lists[a]) & set(lists[b]))
            if shared:
                examples = ", ".join(shared[:5]) + (", ..." if len(shared) > 5 else "")
                raise SplitListError(f"{len(shared)} image(s) of {root} are in both data.splits.{a} and "
                                     f"data.splits.{b} ({examples}); remove them from one of the two lists")
