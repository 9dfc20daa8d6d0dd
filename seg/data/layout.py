"""A dataset layout: where a sample's image and mask are, how its mask becomes labels, and which names are listed.

The loader is shared: the dataset (dataset.py), the resized cache (cache.py), the bad-file checks and report
(validate.py), the splits and folds (splits.py) and `build_datasets` read every dataset through this interface.
The Oxford-IIIT Pet layout (`OxfordLayout` in oxford.py, also what the synthetic pets are written in) and the
folder layout (`FolderLayout` in folder.py: images/ + masks/ with matching stems) are its two implementations, so
the quirk handling, the one warning that names every bad file and the cache are the same code for both.

Labels, what a layout's `read_labels` returns and the cache stores: (H, W) uint8 with FOREGROUND = 1,
BACKGROUND = 2 and UNCERTAIN = 3 (Oxford's trimap values; in a folder dataset the mask values mapped to
`ignore`). `data.uncertain` decides what UNCERTAIN becomes (seg.data.trimap.trimap_to_mask).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from seg.data.validate import BadSample

__all__ = ["FOREGROUND", "BACKGROUND", "UNCERTAIN", "LAYOUTS", "Layout", "Listing"]

FOREGROUND, BACKGROUND, UNCERTAIN = 1, 2, 3
LAYOUTS = ("oxford", "folder")
"""The layouts (`data.layout`; the schema's allowed values repeat them)."""


@dataclass
class Listing:
    """A dataset's names before the train/val split: trainval and test in list order, the val list when one was
    given (else val is drawn from trainval), and the files the layout found wrong while listing them."""

    trainval: list[str]
    test: list[str]
    val: list[str] | None = None
    bad: list[BadSample] = field(default_factory=list)


class Layout(Protocol):
    """What the shared loader needs of a dataset layout (picklable: loader workers receive it)."""

    root: Path
    mask_word: str  # what its masks are called in messages: "trimap", "mask"

    def image_path(self, name: str) -> Path:
        """The image file of sample `name`."""

    def mask_path(self, name: str) -> Path:
        """The mask file of sample `name`."""

    def read_labels(self, path: Path) -> np.ndarray:
        """(H, W) uint8 labels (FOREGROUND / BACKGROUND / UNCERTAIN) of a mask file; BadImageError if unusable."""

    def value_counts(self, path: Path) -> dict[str, int]:
        """{raw mask value (or colour '#rrggbb'): pixels} of a mask file (for the dataset fingerprint)."""

    def identity(self) -> str:
        """What the labels depend on besides the files (a mask value map): part of the cache key."""

    def listing(self) -> Listing:
        """The names of the dataset (DatasetNotFoundError, SplitListError, ConfigError when it cannot be listed)."""
