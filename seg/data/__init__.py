"""Data: the Oxford-IIIT Pet layout (real or synthetic), its cache, and augmentation presets.

Modules: images (robust reading + resize), trimap (border policy), oxford (layout, splits),
validate (bad samples), dataset (Dataset + sources), cache (resized uint8 cache), staging (folders built
atomically), transforms (presets), synthetic (generator + CLI), build (`build_datasets`).
"""

from seg.data.build import build_datasets
from seg.data.images import BadImageError, read_rgb
from seg.data.oxford import DatasetNotFoundError, SplitListError
from seg.data.transforms import PRESETS, denormalize, eval_transform
from seg.data.trimap import UNCERTAIN_MODES
from seg.data.validate import BadSamplesError

__all__ = [
    "build_datasets", "DatasetNotFoundError", "SplitListError", "BadImageError", "BadSamplesError", "read_rgb",
    "eval_transform", "denormalize", "PRESETS", "UNCERTAIN_MODES",
]
