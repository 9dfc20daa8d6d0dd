"""Augmentation presets: shapes, knobs, seeding, and (seeded property test) image/mask alignment."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import numpy as np
import pytest
import torch

from seg.data.transforms import build_augmentation, denormalize
from seg.schema import AUGMENTATIONS, GROUPS

torch.set_num_threads(1)
S = 48
TRIALS = 100
# every preset with its colour transforms switched off, so the image still encodes the mask exactly
GEOMETRY_ONLY = {
    "none": {},
    "basic": {"jitter_p": 0.0},
    "strong": {"jitter_p": 0.0, "rgb_shift_p": 0.0, "noise_p": 0.0, "affine_p": 1.0, "rotate": 30.0},
    "crop_gray": {"gray_p": 0.0, "brightness_p": 0.0},
}


def preset(name: str, **knobs: float) -> dict:
    """The preset's config as the schema gives it (its defaults), with `knobs` changed."""
    return {**dataclasses.asdict(GROUPS["augmentation"][name]()), **knobs}


def _random_mask(rng: np.random.Generator) -> np.ndarray:
    """(S, S) uint8: a few discs labelled 1 or 255 (ignore) on 0."""
    y, x = np.mgrid[0:S, 0:S]
    mask = np.zeros((S, S), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        cy, cx, r = rng.uniform(0, S), rng.uniform(0, S), rng.uniform(3, 15)
        mask[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.choice([1, 1, 255])
    return mask


def _encode(mask: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8 image whose channels say the label: R = pet, G = ignore, B = inside the frame."""
    channels = [(mask == 1) * 255, (mask == 255) * 255, np.full(mask.shape, 255)]
    return np.stack(channels, axis=-1).astype(np.uint8)


def _decode(image: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Label map read back from a transformed encoded image, and where that reading is unambiguous."""
    v = (denormalize(image) * 255).numpy()
    clear = (np.minimum(v, 255 - v) <= 8).all(axis=0)  # every channel close to 0 or 255: no blending
    label = np.where(v[2] < 128, 0, np.where(v[0] > 128, 1, np.where(v[1] > 128, 255, 0)))  # padding -> 0
    return label, clear


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_geometry_keeps_image_and_mask_aligned(name: str) -> None:
    augment = build_augmentation(preset(name, **GEOMETRY_ONLY[name]), S)
    rng = np.random.default_rng(0)
    clear_fraction = []
    for trial in range(TRIALS):
        torch.manual_seed(trial)
        mask = _random_mask(rng)
        image, out = augment(_encode(mask), mask)
        assert image.shape == (3, S, S) and out.shape == (1, S, S)
        assert set(out.unique().tolist()) <= {0.0, 1.0, 255.0}
        label, clear = _decode(image)
        np.testing.assert_array_equal(out[0].numpy()[clear], label[clear], err_msg=f"{name} trial {trial}")
        clear_fraction.append(clear.mean())
    assert np.mean(clear_fraction) > 0.8  # the check covered most pixels


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_full_presets_keep_mask_values_and_shapes(name: str) -> None:
    augment = build_augmentation(preset(name), S)
    rng = np.random.default_rng(1)
    for trial in range(10):
        torch.manual_seed(trial)
        mask = _random_mask(rng)
        image = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
        x, m = augment(image, mask)
        assert x.shape == (3, S, S) and x.dtype == torch.float32
        assert m.shape == (1, S, S) and m.dtype == torch.float32
        assert set(m.unique().tolist()) <= {0.0, 1.0, 255.0}


def test_augmentation_follows_the_torch_seed_and_pickles() -> None:
    augment = build_augmentation(preset("strong"), S)
    mask = _random_mask(np.random.default_rng(2))
    image = _encode(mask)

    def run(a: object, seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return torch.cat([t.flatten() for _ in range(3) for t in a(image, mask)])

    assert torch.equal(run(augment, 0), run(augment, 0))
    assert not torch.equal(run(augment, 0), run(augment, 1))
    assert torch.equal(run(pickle.loads(pickle.dumps(augment)), 0), run(augment, 0))


def test_none_draws_nothing_from_the_global_rng() -> None:
    torch.manual_seed(0)
    build_augmentation({"name": "none"}, S)(np.zeros((S, S, 3), np.uint8), np.zeros((S, S), np.uint8))
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))


def test_bad_configs_raise() -> None:
    with pytest.raises(ValueError, match="none, basic, strong, crop_gray"):
        build_augmentation({"name": "fancy"}, S)
    with pytest.raises(ValueError, match="hflip_p"):
        build_augmentation({**preset("basic"), "hflip": 0.5}, S)
    with pytest.raises(ValueError, match="fill_mask"):
        build_augmentation(preset("strong", fill_mask=7), S)


def test_schema_knobs_are_the_presets_parameters() -> None:
    for name in AUGMENTATIONS:
        build = AUGMENTATIONS.builder(name)
        knobs = set(preset(name)) - {"name"}
        assert knobs == set(inspect.signature(build).parameters) - {"size"}, name
