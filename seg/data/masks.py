"""Binary masks of a folder dataset: the map from mask values (or colours) to foreground, background or ignore.

`data.mask_values` (null: 0 = background, 1 and 255 = foreground) maps either gray values / palette indices
(integer keys 0-255, e.g. {0: background, 255: foreground, 128: ignore}) or colours (keys "#rrggbb" in a YAML
file, or "R-G-B" on the command line, e.g. {0-0-0: background, 255-0-0: foreground}). With integer keys a palette
mask is read by its indices, an RGB mask must be gray (R = G = B); with colour keys every mask is read as RGB
(palette masks through their palette). A value that is not in the map makes the file a bad sample.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seg.data.images import BadImageError, open_image
from seg.data.layout import BACKGROUND, FOREGROUND, UNCERTAIN
from seg.errors import ConfigError

__all__ = ["CLASSES", "DEFAULT_MASK_VALUES", "MaskMap", "raw_mask_values"]

CLASSES = {"foreground": FOREGROUND, "background": BACKGROUND, "ignore": UNCERTAIN}
DEFAULT_MASK_VALUES: dict[Any, str] = {0: "background", 1: "foreground", 255: "foreground"}
_COLOUR = re.compile(r"^#([0-9a-fA-F]{6})$|^(\d{1,3})-(\d{1,3})-(\d{1,3})$")
_HIGH_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def _colour(key: Any) -> int | None:
    """A colour key as 0xRRGGBB, or None when `key` is no colour."""
    match = _COLOUR.match(str(key).strip())
    if match is None:
        return None
    if match.group(1):
        return int(match.group(1), 16)
    r, g, b = (int(match.group(i)) for i in (2, 3, 4))
    return (r << 16 | g << 8 | b) if max(r, g, b) <= 255 else None


def _colour_text(code: int) -> str:
    return f"#{int(code):06x}"


@dataclass(frozen=True)
class MaskMap:
    """Mask value -> label. gray: {0..255: label} (values or palette indices), colours: {0xRRGGBB: label}."""

    gray: dict[int, int] | None
    colours: dict[int, int] | None

    @classmethod
    def parse(cls, mapping: dict[Any, str] | None) -> MaskMap:
        """ConfigError naming data.mask_values for an unknown class, a bad key, or gray and colour keys mixed."""
        mapping = mapping or DEFAULT_MASK_VALUES
        gray, colours = {}, {}
        for key, cls_name in mapping.items():
            if cls_name not in CLASSES:
                raise ConfigError(f"invalid config: data.mask_values maps {key!r} to {cls_name!r}; allowed: "
                                  f"{', '.join(CLASSES)}")
            colour = None if isinstance(key, int) or str(key).isdigit() else _colour(key)
            if colour is not None:
                colours[colour] = CLASSES[cls_name]
            elif str(key).isdigit() and int(key) <= 255:
                gray[int(key)] = CLASSES[cls_name]
            else:
                raise ConfigError(f"invalid config: data.mask_values key {key!r} is neither a value 0-255 nor a "
                                  "colour ('#rrggbb' in YAML, R-G-B on the command line, e.g. 255-0-0)")
        if gray and colours:
            raise ConfigError("invalid config: data.mask_values mixes gray values and colours; give one kind")
        return cls(gray or None, colours or None)

    def describe(self) -> str:
        """The map in one stable line (part of the cache key, and of messages)."""
        names = {v: k for k, v in CLASSES.items()}
        if self.colours is not None:
            return ", ".join(f"{_colour_text(c)}: {names[v]}" for c, v in sorted(self.colours.items()))
        return ", ".join(f"{g}: {names[v]}" for g, v in sorted(self.gray.items()))

    def read_labels(self, path: Path) -> np.ndarray:
        """(H, W) uint8 labels of a mask file; BadImageError for an unreadable file or a value outside the map."""
        values = raw_mask_values(path, colour=self.colours is not None)
        table = self.colours if self.colours is not None else self.gray
        found, inverse = np.unique(values, return_inverse=True)
        labels = np.array([table.get(int(v), 0) for v in found], dtype=np.uint8)
        if not labels.all():
            outside = [(_colour_text(v) if self.colours is not None else int(v)) for v in found[labels == 0]]
            raise BadImageError(f"{path}: mask values {outside[:8]} outside data.mask_values ({self.describe()})")
        return np.ascontiguousarray(labels[inverse].reshape(values.shape))

    def value_counts(self, path: Path) -> dict[str, int]:
        """{raw value, or '#rrggbb' with a colour map: pixels} of a mask file."""
        colour = self.colours is not None
        found, counts = np.unique(raw_mask_values(path, colour), return_counts=True)
        return {(_colour_text(v) if colour else str(int(v))): int(n) for v, n in zip(found, counts, strict=True)}


def raw_mask_values(path: Path, colour: bool) -> np.ndarray:
    """(H, W) raw values of a mask: 0xRRGGBB codes (colour) or gray values / palette indices (int64)."""
    image = open_image(path)
    if colour:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int64)
        return rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]
    if image.mode in ("P", "L"):
        return np.asarray(image, dtype=np.int64)
    if image.mode in _HIGH_BIT_MODES:
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 255 or not np.array_equal(values, values.round()):
            raise BadImageError(f"{path}: {image.mode} mask with values outside 0-255")
        return values.astype(np.int64)
    if image.mode in ("RGB", "RGBA", "LA", "PA"):
        array = np.asarray(image.convert("RGB") if image.mode == "PA" else image, dtype=np.int64)
        channels = array[..., :1] if image.mode == "LA" else array[..., :3]
        if (channels != channels[..., :1]).any():
            raise BadImageError(f"{path}: a colour mask; map its colours with data.mask_values "
                                "(e.g. {0-0-0: background, 255-0-0: foreground})")
        return channels[..., 0]
    return np.asarray(image.convert("L"), dtype=np.int64)  # "1" (0/255), CMYK, ...
