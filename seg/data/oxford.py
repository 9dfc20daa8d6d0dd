"""The Oxford-IIIT Pet folder layout, its split lists and the train/val/test split rule.

    <root>/images/<name>.jpg               photos (any format PIL reads, whatever the extension)
    <root>/annotations/trimaps/<name>.png  1 = pet, 2 = background, 3 = border
    <root>/annotations/trainval.txt        lines `Name classid species breedid`; `#` lines are comments
    <root>/annotations/test.txt

Only names listed in the split files are used: stray files (`.mat`, `._*` AppleDouble files, images in no
list) are never looked at. `OxfordLayout` is this layout as one implementation of the shared loader's
`seg.data.layout.Layout` (the other: seg.data.folder).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seg.data.images import read_trimap
from seg.data.layout import Listing
from seg.errors import ConfigError, SegError
from seg.files import atomic_write_text

__all__ = [
    "DatasetNotFoundError", "SplitListError", "OxfordLayout", "image_path", "trimap_path", "read_split_list",
    "missing_layout", "check_layout", "check_disjoint", "split_names", "subsample", "download_oxford", "export_folder",
]

TORCHVISION_FOLDER = "oxford-iiit-pet"
_REQUIRED = ("images", "annotations/trimaps", "annotations/trainval.txt", "annotations/test.txt")
_FIX = "set data.root=/path/to/oxford-iiit-pet, or data.download=true (needs internet), or use data=synthetic"


class DatasetNotFoundError(SegError, FileNotFoundError):
    """No dataset in the Oxford layout at the configured root."""


class SplitListError(SegError, ValueError):
    """The split lists would invalidate a result: an image listed for both training and test."""


class OxfordLayout:
    """The Oxford-IIIT Pet layout as a `seg.data.layout.Layout`: trimap values are already the shared labels."""

    mask_word = "trimap"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def image_path(self, name: str) -> Path:
        return image_path(self.root, name)

    def mask_path(self, name: str) -> Path:
        return trimap_path(self.root, name)

    def read_labels(self, path: Path) -> np.ndarray:
        return read_trimap(path)

    def value_counts(self, path: Path) -> dict[str, int]:
        counts = np.bincount(read_trimap(path).ravel(), minlength=4)
        return {str(v): int(n) for v, n in enumerate(counts) if n}

    def identity(self) -> str:
        return "oxford-trimap"

    def listing(self) -> Listing:
        """trainval.txt and test.txt (DatasetNotFoundError without them, SplitListError if they overlap)."""
        check_layout(self.root)
        trainval = read_split_list(self.root / "annotations" / "trainval.txt")
        test = read_split_list(self.root / "annotations" / "test.txt")
        check_disjoint(self.root, trainval, test)
        return Listing(trainval, test)


def image_path(root: Path, name: str) -> Path:
    return root / "images" / f"{name}.jpg"


def trimap_path(root: Path, name: str) -> Path:
    return root / "annotations" / "trimaps" / f"{name}.png"


def read_split_list(path: Path) -> list[str]:
    """Sample names (first column) of a split file, in file order, without comments, blanks or repeats."""
    names: dict[str, None] = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.setdefault(line.split()[0], None)
    return list(names)


def missing_layout(root: Path) -> list[str]:
    """The parts of the Oxford layout that `root` lacks (empty: it holds a dataset)."""
    return [part for part in _REQUIRED if not (root / part).exists()]


def check_layout(root: Path) -> None:
    """Raise DatasetNotFoundError naming `root`, what is missing, and how to fix it."""
    missing = missing_layout(root)
    if not missing:
        return
    hint = ""
    if not missing_layout(root / TORCHVISION_FOLDER):
        hint = f" (it is one level down: data.root={root / TORCHVISION_FOLDER})"
    raise DatasetNotFoundError(
        f"No Oxford-IIIT Pet dataset at {root}: missing {', '.join(missing)}{hint}. To fix: {_FIX}."
    )


def split_names(root: Path, val_split: float | None, seed: int) -> dict[str, list[str]]:
    """{"train", "val", "test"} -> names, in split-file order (the rule: seg.data.splits.split_names)."""
    from seg.data.splits import split_names as shared_split_names

    return shared_split_names(OxfordLayout(root).listing(), val_split=val_split, seed=seed)


def check_disjoint(root: Path, trainval: list[str], test: list[str]) -> None:
    """SplitListError when an image is listed in both trainval.txt and test.txt: it would be trained on (or
    select the best epoch, as val) and then scored as unseen, inflating the test result."""
    shared = sorted(set(trainval) & set(test))
    if shared:
        examples = ", ".join(shared[:5]) + (", ..." if len(shared) > 5 else "")
        raise SplitListError(
            f"{len(shared)} image(s) of {root} are listed in both annotations/trainval.txt and annotations/test.txt "
            f"({examples}): a test score would include images seen in training or validation. Remove them from "
            "one of the two lists."
        )


def subsample(names: list[str], limit: int | None) -> list[str]:
    """At most `limit` names, evenly spaced over the list (so every breed is represented), in order."""
    if limit is None or limit >= len(names):
        return names
    if limit < 1:
        raise ConfigError(f"data.limit={limit!r} must be null or a positive integer")
    picks = np.unique(np.linspace(0, len(names) - 1, num=limit).round().astype(int))
    return [names[i] for i in picks]


def download_oxford(root: Path) -> None:
    """Fetch the dataset with torchvision, which writes <parent>/oxford-iiit-pet/{images,annotations}."""
    if root.name != TORCHVISION_FOLDER:
        raise ConfigError(
            f"data.download=true needs data.root to end in /{TORCHVISION_FOLDER} (torchvision's folder "
            f"name), got {root}; e.g. data.root={root.parent / TORCHVISION_FOLDER}"
        )
    from torchvision.datasets import OxfordIIITPet

    root.parent.mkdir(parents=True, exist_ok=True)
    OxfordIIITPet(root=str(root.parent), split="trainval", target_types="segmentation", download=True)


def export_folder(root: Path, out: Path, splits: dict[str, list[str]]) -> Path:
    """Write the samples `splits` names of the Oxford dataset at `root` into `out` in the folder layout
    (seg.data.folder): images symlinked, trimaps as 0/255 masks with the border as pet (how Oxford's default
    `data.uncertain=foreground` reads it), and `<split>.txt` lists, so `data=folder data.splits.train=train.txt
    data.splits.val=val.txt data.splits.test=test.txt` gives the same splits. The loaders' agreement check."""
    from PIL import Image

    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir()
    for split, names in splits.items():
        for name in names:
            (out / "images" / f"{name}.jpg").symlink_to(image_path(root, name).resolve())
            trimap = np.asarray(Image.open(trimap_path(root, name)))
            Image.fromarray(np.where(trimap == 2, 0, 255).astype(np.uint8)).save(out / "masks" / f"{name}.png")
        atomic_write_text(out / f"{split}.txt", "".join(f"{n}\n" for n in names))
    return out
