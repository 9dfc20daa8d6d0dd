"""Augmentation presets (albumentations 2.x) and the evaluation transform.

The presets' knobs and their defaults are in the config schema (seg/schema.py).

Every preset takes an (S, S, 3) uint8 image and an (S, S) uint8 mask with values in {0, 1, 255} and
returns a normalised (3, S, S) float32 image and a (1, S, S) float32 mask. Masks are always resampled
with nearest neighbour, so they stay in {0, 1, 255}: RandomResizedCrop uses INTER_NEAREST_EXACT (pixel
centres aligned like the image's bilinear resize; cv2's plain INTER_NEAREST resize is off by up to half a
pixel) and Affine uses INTER_NEAREST (its warp rounds correctly; it rejects NEAREST_EXACT). The tests
check that every pixel whose image value is unambiguous carries the matching mask label.
Regions that Affine pads get `fill_mask` (default 0 = background: the padding is black image, not
pet; 255 would ignore it instead).

Randomness: albumentations 2 draws from its own generators (`Compose.random_generator`, `py_random`)
and ignores `random`/`numpy`/`torch` global seeds. A plain Compose would therefore repeat the same
augmentation sequence in every DataLoader worker and across runs regardless of the seed. `Augment`
re-seeds the Compose before every call from ONE draw of a torch RNG: the generator passed in (seeded
per item by the engine's loaders, see `seg.engine.runtime.SeededSampler`) or else torch's global RNG,
which the caller seeds (`torch.manual_seed`) and which DataLoader seeds per worker (base_seed +
worker_id). Augmentation is therefore reproducible given the seed.
"""

from __future__ import annotations

import inspect
import random
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from seg.constants import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD
from seg.data.images import resize_image, resize_trimap
from seg.errors import ConfigError

__all__ = ["Augment", "build_augmentation", "eval_transform", "denormalize", "preset_basic", "preset_crop_gray",
           "preset_none", "preset_strong"]

Pair = tuple[float, float]


def _resized_crop(size: int, scale: Pair, ratio: Pair, p: float) -> A.RandomResizedCrop:
    """Crop a random area fraction `scale` with aspect ratio in `ratio` and zoom it back to S x S."""
    return A.RandomResizedCrop(size=(size, size), scale=tuple(scale), ratio=tuple(ratio), p=p,
                               interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST_EXACT)


def preset_none(size: int) -> list[A.BasicTransform]:
    """No augmentation: only normalisation (added by Augment for every preset)."""
    return []


def preset_basic(size: int, *, hflip_p: float, vflip_p: float, jitter_p: float,
           brightness: float, contrast: float, saturation: float,
           hue: float) -> list[A.BasicTransform]:
    """Report A: flips and colour jitter."""
    return [
        A.HorizontalFlip(p=hflip_p),
        A.VerticalFlip(p=vflip_p),
        A.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue, p=jitter_p),
    ]


def preset_strong(size: int, *, crop_scale: Pair, crop_ratio: Pair, hflip_p: float, vflip_p: float, affine_p: float,
            shift: float, scale: Pair, rotate: float, fill_mask: int, jitter_p: float, brightness: float,
            contrast: float, saturation: float, hue: float, rgb_shift_p: float, rgb_shift: float, noise_p: float,
            noise_std: Pair) -> list[A.BasicTransform]:
    """Report E: resized crop, flips, shift-scale-rotate, colour jitter, RGB shift, Gaussian noise."""
    _check_fill_mask(fill_mask)
    return [
        _resized_crop(size, crop_scale, crop_ratio, p=1.0),
        A.HorizontalFlip(p=hflip_p),
        A.VerticalFlip(p=vflip_p),
        A.Affine(translate_percent=(-shift, shift), scale=tuple(scale), rotate=(-rotate, rotate),
                 border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=fill_mask,
                 interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST, p=affine_p),
        A.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue, p=jitter_p),
        A.RGBShift(r_shift_limit=rgb_shift, g_shift_limit=rgb_shift, b_shift_limit=rgb_shift, p=rgb_shift_p),
        A.GaussNoise(std_range=tuple(noise_std), p=noise_p),
    ]


def preset_crop_gray(size: int, *, crop_p: float, crop_scale: Pair, crop_ratio: Pair, gray_p: float, brightness: float,
               brightness_p: float) -> list[A.BasicTransform]:
    """Report B: random crop-and-zoom, grayscale, brightness (contrast left unchanged)."""
    return [
        _resized_crop(size, crop_scale, crop_ratio, p=crop_p),
        A.ToGray(num_output_channels=3, p=gray_p),
        A.RandomBrightnessContrast(brightness_limit=brightness, contrast_limit=0.0, p=brightness_p),
    ]


def _check_fill_mask(fill_mask: int) -> None:
    if fill_mask not in (0, IGNORE_INDEX):
        raise ConfigError(
            f"augmentation.fill_mask={fill_mask!r} must be 0 (background) or {IGNORE_INDEX} (ignore)"
        )


class Augment:
    """image (H, W, 3) uint8 [+ mask (H, W) uint8] -> (3, S, S) float32 normalised [, (1, S, S) float32].

    Inputs that are not S x S are first resized like the cache does (bilinear / nearest).
    Picklable, so it can go to DataLoader workers.
    """

    def __init__(self, transforms: list[A.BasicTransform], image_size: int) -> None:
        self.image_size = image_size
        self.random = bool(transforms)  # `none` draws nothing from the global RNG
        self.compose = A.Compose(
            [*transforms, A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD), ToTensorV2()],
            strict=True, seed=0,
        )

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.random:
            seed = int(torch.randint(0, 2**63 - 1, (), generator=generator).item())
            self.compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
        inputs: dict[str, np.ndarray] = {"image": resize_image(image, self.image_size)}
        if mask is not None:
            inputs["mask"] = resize_trimap(mask, self.image_size)
        out = self.compose(**inputs)
        return out["image"], (out["mask"][None].float() if mask is not None else None)


def build_augmentation(augmentation: dict[str, Any], image_size: int) -> Augment:
    """The preset `augmentation["name"]` (seg.schema AUGMENTATIONS: preset_<name> here) with the other keys of the
    dict as its knobs.

    Raises ConfigError for an unknown preset (listing the presets) or an unknown knob (listing the knobs).
    """
    from seg.schema import AUGMENTATIONS  # the registry of presets (plain Python: no import cycle, no torch)

    knobs = dict(augmentation)
    name = knobs.pop("name", None)
    if name not in AUGMENTATIONS:
        raise ConfigError(f"augmentation={name!r} is not a preset; choose one of {', '.join(AUGMENTATIONS)}")
    preset = AUGMENTATIONS.builder(name)
    allowed = [p for p in inspect.signature(preset).parameters if p != "size"]
    unknown = sorted(set(knobs) - set(allowed))
    if unknown:
        raise ConfigError(f"augmentation={name} has no knob(s) {unknown}; its knobs are {allowed}")
    return Augment(preset(image_size, **knobs), image_size)


class _EvalTransform:
    """callable(image=(H, W, 3) uint8) -> {"image": (3, S, S) float32 normalised}: resize + normalise."""

    def __init__(self, image_size: int) -> None:
        self._augment = Augment([], image_size)

    def __call__(self, *, image: np.ndarray) -> dict[str, torch.Tensor]:
        return {"image": self._augment(image)[0]}


def eval_transform(image_size: int) -> _EvalTransform:
    """The deterministic transform of val/test, for prediction on arbitrary images."""
    return _EvalTransform(image_size)


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Undo ImageNet normalisation: (3, H, W) or (N, 3, H, W) -> same shape, float in [0, 1]."""
    image = image.float()
    shape = (3, 1, 1) if image.dim() == 3 else (1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(shape)
    std = torch.tensor(IMAGENET_STD, device=image.device).view(shape)
    return (image * std + mean).clamp(0.0, 1.0)
