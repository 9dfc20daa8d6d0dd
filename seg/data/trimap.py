"""Oxford trimap (1 = pet, 2 = background, 3 = border) -> binary mask, with a policy for the border."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from seg.constants import IGNORE_INDEX, UNCERTAIN_MODES
from seg.errors import ConfigError

__all__ = ["UNCERTAIN_MODES", "check_uncertain", "trimap_to_mask"]

PET, BACKGROUND, BORDER = 1, 2, 3


def check_uncertain(uncertain: str) -> str:
    """Return `uncertain` if it is a known mode, else raise a ValueError naming `data.uncertain`."""
    if uncertain not in UNCERTAIN_MODES:
        raise ConfigError(f"data.uncertain={uncertain!r} is not one of {', '.join(UNCERTAIN_MODES)}")
    return uncertain


def trimap_to_mask(trimap: np.ndarray, uncertain: str = "foreground",
                   generator: torch.Generator | None = None) -> np.ndarray:
    """Map raw trimap values to mask values.

    Args:
        trimap: (H, W) uint8 with values in {1, 2, 3}.
        uncertain: one of UNCERTAIN_MODES. `random` draws one coin per call from `generator` (torch's
            global RNG when None), so the whole border of this sample becomes pet or background with
            probability 1/2 each, reproducibly.
        generator: the torch RNG to draw from (only with `random`).

    Returns:
        (H, W) uint8 with values in {0, 1} (or {0, 1, 255} with `ignore`).
    """
    check_uncertain(uncertain)
    if uncertain == "random":
        uncertain = "foreground" if bool(torch.rand((), generator=generator) < 0.5) else "background"
    return cv2.LUT(trimap, _LUTS[uncertain])  # == _LUTS[uncertain][trimap], 6x faster


def _lut(border_value: int) -> np.ndarray:
    lut = np.zeros(256, dtype=np.uint8)  # any other value -> background (values are validated on read)
    lut[PET] = 1
    lut[BORDER] = border_value
    return lut


_LUTS = {"foreground": _lut(1), "background": _lut(0), "ignore": _lut(IGNORE_INDEX)}
"""Trimap value -> mask value, per border policy (`random` picks foreground or background per call)."""
