"""Robust image and trimap reading, and the one resize used everywhere (cache, no-cache, predict).

Every photo becomes HxWx3 uint8 RGB whatever its file says: palette GIFs, RGBA PNGs named `.jpg`,
grayscale, CMYK and 16-bit images are converted; alpha is dropped (the trimap annotates the stored
pixels). EXIF orientation is deliberately NOT applied: the Oxford trimaps are aligned with the stored
pixel grid, not with the displayed orientation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["BadImageError", "open_image", "read_rgb", "read_trimap", "header_size", "resize_image", "resize_trimap"]

_HIGH_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class BadImageError(ValueError):
    """A file that cannot be used as an image: unreadable, not an image, empty or a decompression bomb."""


def _check_pixels(path: Path, image: Image.Image) -> None:
    """Refuse images above PIL's MAX_IMAGE_PIXELS (PIL itself only warns there; it raises at twice that)."""
    width, height = image.size
    if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
        raise BadImageError(f"{path}: {width}x{height} pixels, a possible decompression bomb")


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode `path`; every failure becomes a BadImageError naming the path."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise BadImageError(f"{path}: empty file (0 bytes)")
        with Image.open(path) as image:  # closes the file; the decoded pixels stay
            _check_pixels(path, image)
            image.load()
        return image
    except BadImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise BadImageError(f"{path}: cannot read image ({type(e).__name__}: {e})") from e


def read_rgb(path: str | Path) -> np.ndarray:
    """Read any image PIL understands as RGB.

    Returns:
        (H, W, 3) uint8 array. Raises BadImageError (message starts with the path) on any failure.
    """
    image = open_image(path)
    if image.mode in _HIGH_BIT_MODES:  # 16-bit / float grayscale: rescale to 8 bits instead of clipping
        values = np.asarray(image, dtype=np.float64)
        top = max(float(values.max()), 1.0)
        gray = np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if image.mode != "RGB":
        image = image.convert("RGB")  # P, PA, L, LA, RGBA, CMYK, YCbCr, 1
    rgb = np.asarray(image, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise BadImageError(f"{path}: unexpected decoded shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def read_trimap(path: str | Path) -> np.ndarray:
    """Read an Oxford trimap.

    Returns:
        (H, W) uint8 array with the raw values 1 = pet, 2 = background, 3 = border.
        Raises BadImageError if it is unreadable or holds any other value.
    """
    image = open_image(path)
    trimap = np.asarray(image if image.mode in ("L", "P") else image.convert("L"), dtype=np.uint8)
    if trimap.ndim != 2:
        raise BadImageError(f"{path}: trimap has shape {trimap.shape}, expected (H, W)")
    values = np.unique(trimap)
    if not np.isin(values, (1, 2, 3)).all():
        raise BadImageError(f"{path}: trimap values {values.tolist()} outside {{1, 2, 3}}")
    return np.ascontiguousarray(trimap)


def header_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file header only (no decoding); BadImageError if it is not an image."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise BadImageError(f"{path}: empty file (0 bytes)")
        with Image.open(path) as image:
            _check_pixels(path, image)
            return image.size
    except BadImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise BadImageError(f"{path}: not a readable image ({type(e).__name__}: {e})") from e


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8 with PIL bilinear (antialiased when shrinking).

    PIL's BILINEAR widens its kernel on downscaling, so it behaves like an area filter when shrinking
    and like plain bilinear when enlarging; the reference reports resize bilinearly.
    """
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def resize_trimap(trimap: np.ndarray, size: int) -> np.ndarray:
    """(H, W) uint8 -> (size, size) uint8 with nearest neighbour, so no new label values appear."""
    if trimap.shape == (size, size):
        return trimap
    return np.asarray(Image.fromarray(trimap).resize((size, size), Image.NEAREST))
