"""The segmentation dataset and the two places its pixels come from (files, or the memory-mapped cache)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from seg.data.images import BadImageError, read_rgb, resize_image, resize_trimap
from seg.data.layout import Layout
from seg.data.transforms import Augment
from seg.data.trimap import check_uncertain, trimap_to_mask

__all__ = ["load_sample", "FileSource", "ArraySource", "PetSegmentation"]


def load_sample(layout: Layout, name: str, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode and resize one sample of any layout: ((S, S, 3) uint8 RGB, (S, S) uint8 labels 1/2/3).

    The single decode path of both the cache builder and FileSource, so cached == uncached exactly.
    Raises BadImageError if a file is unreadable, a mask value is outside the layout's map, or image and
    mask sizes differ.
    """
    image = read_rgb(layout.image_path(name))
    labels = layout.read_labels(layout.mask_path(name))
    if image.shape[:2] != labels.shape:
        raise BadImageError(
            f"{layout.image_path(name)}: image size {image.shape[:2]} != {layout.mask_word} size {labels.shape}"
        )
    return resize_image(image, image_size), resize_trimap(labels, image_size)


class FileSource:
    """Decodes and resizes every item from the files (no cache)."""

    def __init__(self, layout: Layout, names: list[str], image_size: int) -> None:
        self.layout, self.names, self.image_size = layout, names, image_size

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return load_sample(self.layout, self.names[index], self.image_size)


class ArraySource:
    """Reads items from cache arrays: images (N, S, S, 3) uint8 and trimaps (N, S, S) uint8 .npy files.

    The arrays are memory-mapped lazily in each process (so workers share the page cache and pickling
    the dataset sends only the paths).
    """

    def __init__(self, images_file: Path, trimaps_file: Path) -> None:
        self.images_file, self.trimaps_file = images_file, trimaps_file
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The memory-mapped (images, labels) arrays, opened on first use in this process."""
        if self._arrays is None:
            self._arrays = (np.load(self.images_file, mmap_mode="r"),
                            np.load(self.trimaps_file, mmap_mode="r"))
        return self._arrays

    def __len__(self) -> int:
        return len(self.arrays()[0])

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        images, trimaps = self.arrays()
        return np.array(images[index]), np.array(trimaps[index])  # copies: writable, detached from the map

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arrays": None}


class PetSegmentation(Dataset):
    """Items are (image (3, S, S) float32 ImageNet-normalised, mask (1, S, S) float32 in {0, 1, 255}).

    An item's random draws (augmentation, `uncertain=random`) come from a generator seeded per item:
    `dataset[(index, seed)]` (what the engine's loaders ask for, see `SeededSampler`) is a function of
    (index, seed) only; `dataset[index]` is `dataset[(index, index)]`, the item a loader at epoch seed 0
    (val, test) gives, so example panels show exactly the masks that were scored.

    Attributes:
        names: sample stems aligned with indices.
    """

    def __init__(self, names: list[str], source: FileSource | ArraySource, augment: Augment,
                 uncertain: str = "foreground") -> None:
        self.names = list(names)
        self.source = source
        self.augment = augment
        self.uncertain = check_uncertain(uncertain)
        self._failed: set[int] = set()

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = item if isinstance(item, tuple) else (item, item)
        generator = torch.Generator().manual_seed(seed)
        image, trimap = self._load(index)
        mask = trimap_to_mask(trimap, self.uncertain, generator)
        image_t, mask_t = self.augment(image, mask, generator)
        return image_t, mask_t

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Load `index`; if its files turn out unreadable, warn and use the next good sample instead."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        for step in range(len(self)):
            candidate = (index + step) % len(self)
            if candidate in self._failed:
                continue
            try:
                return self.source.load(candidate)
            except (BadImageError, OSError) as e:
                self._failed.add(candidate)
                warnings.warn(f"Unreadable sample {self.names[candidate]!r}, using another one instead: {e}",
                              UserWarning, stacklevel=3)
        raise BadImageError(f"no readable sample left among {len(self)}")
