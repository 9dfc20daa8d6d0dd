"""Data: one loader for two layouts (Oxford-IIIT Pet, real or synthetic; any images/ + masks/ folder), its cache,
k-fold splits, the dataset fingerprint and augmentation presets.

Modules: layout (what a layout provides), oxford and folder (the two layouts), masks (folder mask values), images
(robust reading + resize), trimap (the uncertain-label policy), splits (val rule, k-fold), validate (bad samples),
dataset (Dataset + sources), cache (resized uint8 cache), staging (folders built atomically), fingerprint and
inspect (`python -m seg.data.inspect`), transforms (presets), synthetic (generator + CLI), build (`build_datasets`).
"""

from seg.data.build import build_datasets, check_data_keys, layout_kwargs
from seg.data.images import BadImageError, read_rgb
from seg.data.oxford import DatasetNotFoundError, SplitListError
from seg.data.transforms import denormalize, eval_transform
from seg.data.trimap import UNCERTAIN_MODES
from seg.data.validate import BadSamplesError

__all__ = [
    "build_datasets", "check_data_keys", "layout_kwargs", "DatasetNotFoundError", "SplitListError", "BadImageError",
    "BadSamplesError", "read_rgb",
    "eval_transform", "denormalize", "UNCERTAIN_MODES",
]
