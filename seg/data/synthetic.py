"""Synthetic "pets" in the Oxford layout: a dataset for smoke tests and CI that needs no download.

Each image (160-256 px a side) shows one or two irregular textured blobs with "ears"/limbs on a
textured background. Pet and background colours come from the same distribution, the background may
hold pet-coloured patches and the whole scene is lit unevenly, so no per-pixel colour threshold
separates them (tests check that an oracle threshold stays well below Dice 0.9); the pets differ by
shape, fur texture and shading, which a small UNet learns. Trimaps: 1 = pet, 2 = background and a
border band of 3 a few pixels wide around each outline, like the real ones.

Deterministic: image i depends only on (seed, i), so the same seed and n give the same bytes.

    python -m seg.data.synthetic --out DIR --n 300 --seed 0
    python -m seg.data.synthetic --out DIR --layout folder   # images/*.jpg + masks/*.png (0/255, border 255)
"""

from __future__ import annotations

import argparse
import functools
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from seg.data.layout import LAYOUTS
from seg.data.staging import build_atomically, remove_stale_builds
from seg.errors import ConfigError, exit_on_user_error, folder_or_error

__all__ = ["GENERATOR_VERSION", "make_sample", "write_dataset", "write_folder_dataset", "ensure_synthetic",
           "main"]

GENERATOR_VERSION = 1
META_FILE = "synthetic.json"
TEST_EVERY = 5  # every 5th sample goes to test.txt, the rest to trainval.txt
_ANGLES = 720  # resolution of the blob radius table


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """(h, w) float32 in [0, 1]: a (cells x cells) random grid upsampled bicubically."""
    grid = rng.random((cells, cells), dtype=np.float32)
    field = np.asarray(Image.fromarray(grid).resize((w, h), Image.BICUBIC))
    lo, hi = field.min(), field.max()
    return (field - lo) / max(hi - lo, 1e-6)


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(20, 235, size=3).astype(np.float32)


def _related(rng: np.random.Generator, palette: list[np.ndarray], p: float) -> np.ndarray:
    """With probability p a slightly changed colour of `palette` (camouflage), else a fresh one."""
    if rng.random() < p:
        colour = palette[int(rng.integers(len(palette)))] + rng.normal(0, 12, 3)
        return np.clip(colour, 0, 255).astype(np.float32)
    return _colour(rng)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(3,) colours and an (h, w) field in [0, 1] -> (h, w, 3) float32."""
    return a * (1.0 - t[..., None]) + b * t[..., None]


def _background(rng: np.random.Generator, h: int, w: int,
                colours: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(h, w, 3) float32: a gradient, stripes or blotches between two colours."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    along = (x * np.cos(angle) + y * np.sin(angle)) / max(h, w)
    kind = rng.integers(3)
    if kind == 0:  # gradient
        t = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    elif kind == 1:  # stripes, possibly wavy
        wobble = rng.uniform(0, 0.08) * np.sin(2 * np.pi * rng.uniform(1, 4) * y / h)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 14) * (along + wobble))
    else:  # blotches
        t = 1.0 / (1.0 + np.exp(-12.0 * (_smooth_noise(rng, h, w, int(rng.integers(3, 9))) - 0.5)))
    return _mix(*colours, t)


def _blob(rng: np.random.Generator, h: int, w: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """A random polar blob R(theta) (smoothed Fourier radius plus bumps: ears, limbs, tail).

    Returns:
        signed distance-like field (h, w) float32 (< 0 inside, roughly in px) and the normalised
        radius rho / R(theta) (h, w) float32, used for shading.
    """
    table = np.linspace(-np.pi, np.pi, _ANGLES, endpoint=False, dtype=np.float32)  # R depends on theta only
    k = np.arange(2, 6, dtype=np.float32)[:, None]
    amp = (rng.uniform(-0.12, 0.12, size=4) / np.arange(1, 5) ** 0.5).astype(np.float32)[:, None]
    phase = rng.uniform(0, 2 * np.pi, size=4).astype(np.float32)[:, None]
    radius = 1.0 + (amp * np.cos(k * table + phase)).sum(axis=0)
    for _ in range(int(rng.integers(2, 5))):
        centre, width = rng.uniform(-np.pi, np.pi), rng.uniform(0.08, 0.22)
        diff = (table - centre + np.pi) % (2 * np.pi) - np.pi
        radius += rng.uniform(0.25, 0.6) * np.exp(-0.5 * (diff / width) ** 2)
    radius *= scale * min(h, w)
    cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
    tilt, stretch = rng.uniform(0, np.pi), rng.uniform(1.0, 1.6)  # elongated bodies
    dy, dx = np.arange(h, dtype=np.float32)[:, None] - cy, np.arange(w, dtype=np.float32)[None, :] - cx
    u = (dx * np.cos(tilt) + dy * np.sin(tilt)) / stretch
    v = -dx * np.sin(tilt) + dy * np.cos(tilt)
    rho = np.hypot(u, v)
    bins = ((np.arctan2(v, u) + np.pi) * (_ANGLES / (2 * np.pi))).astype(np.int32) % _ANGLES
    r = radius[bins]
    return rho - r, rho / r


def _pet(rng: np.random.Generator, h: int, w: int, rel: np.ndarray,
         colours: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(h, w, 3) float32 fur: two colours in spots or stripes, fine directional hairs, rim shading."""
    fine = _smooth_noise(rng, h, max(w // 6, 8), int(rng.integers(24, 48)))
    hairs = np.asarray(Image.fromarray(fine).resize((w, h), Image.BILINEAR))
    if rng.random() < 0.5:
        spots = _smooth_noise(rng, h, w, int(rng.integers(5, 12)))
        pattern = (spots > rng.uniform(0.45, 0.7)).astype(np.float32)
    else:
        y = np.arange(h, dtype=np.float32)[:, None]
        pattern = (np.sin(2 * np.pi * rng.uniform(4, 10) * y / h + 3 * hairs) > 0.3).astype(np.float32)
    base = _mix(*colours, pattern * rng.uniform(0.5, 1.0))
    base *= (0.75 + 0.5 * hairs)[..., None]
    shade = 1.15 - 0.45 * np.clip(rel, 0, 1) ** 3  # darker towards the outline: looks rounded
    return base * shade[..., None]


def _morph(mask: np.ndarray, radius: int, grow: bool) -> np.ndarray:
    """Square dilation (grow) or erosion of a bool (h, w) mask, separable, by `radius` px."""
    op = np.logical_or if grow else np.logical_and
    out = mask
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        size = out.shape[axis]
        acc = out.copy()
        for shift in range(2 * radius + 1):
            acc = op(acc, padded.take(range(shift, shift + size), axis=axis))
        out = acc
    return out


def make_sample(seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Image `index` of the dataset with `seed`: ((H, W, 3) uint8 RGB, (H, W) uint8 trimap 1/2/3)."""
    rng = np.random.default_rng([seed, index])
    h, w = (int(v) for v in rng.integers(160, 257, size=2))
    n_pets = 1 + int(rng.random() < 0.3)
    fur = [_colour(rng) for _ in range(2 * n_pets)]
    image = _background(rng, h, w, (_related(rng, fur, 0.4), _related(rng, fur, 0.4)))
    for _ in range(int(rng.integers(0, 3))):  # soft, often pet-coloured patches in the background
        dist, _ = _blob(rng, h, w, rng.uniform(0.08, 0.18))
        alpha = np.clip(-dist / 6.0, 0, 1)[..., None] * rng.uniform(0.5, 1.0)
        image = image * (1 - alpha) + _related(rng, fur, 0.6) * alpha
    mask = np.zeros((h, w), dtype=bool)
    for i in range(n_pets):
        dist, rel = _blob(rng, h, w, rng.uniform(0.15, 0.3) / (1 + i))
        alpha = np.clip(0.5 - dist, 0, 1)[..., None]  # 1 px antialiased edge
        image = image * (1 - alpha) + _pet(rng, h, w, rel, (fur[2 * i], fur[2 * i + 1])) * alpha
        mask |= dist < 0
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 0.65 + 0.6 * ((x * rng.uniform(-1, 1) + y * rng.uniform(-1, 1)) / (h + w) + 0.5)
    image = image * np.clip(light, 0.4, 1.3)[..., None] + rng.normal(0, rng.uniform(3, 10), (h, w, 3))
    band = int(rng.integers(1, 3))
    border = _morph(mask, band, grow=True) & ~_morph(mask, band, grow=False)
    trimap = np.where(border, 3, np.where(mask, 1, 2)).astype(np.uint8)
    return np.clip(image, 0, 255).round().astype(np.uint8), trimap


def _write_images(images: Path, n: int, seed: int) -> Iterator[tuple[int, str, np.ndarray]]:
    """Write sample i's image as images/synthpet_<i+1>.jpg (JPEG q90); yield (i, name, its trimap) for each."""
    for i in range(n):
        name = f"synthpet_{i + 1:04d}"
        image, trimap = make_sample(seed, i)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=90)
        (images / f"{name}.jpg").write_bytes(buffer.getvalue())
        yield i, name, trimap


def write_dataset(out: str | Path, n: int, seed: int = 0) -> Path:
    """Write n samples named synthpet_0001... into `out` in the Oxford layout (out must not hold one)."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations" / "trimaps").mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"trainval": [], "test": []}
    for i, name, trimap in _write_images(out / "images", n, seed):
        Image.fromarray(trimap).save(out / "annotations" / "trimaps" / f"{name}.png")
        species = 1 + i % 2
        split = "test" if i % TEST_EVERY == TEST_EVERY - 1 else "trainval"
        lists[split].append(f"{name} {species} {species} 1")
    for split, lines in lists.items():
        header = f"# synthetic pets, seed={seed}, n={n}: Name classid species breedid\n"
        (out / "annotations" / f"{split}.txt").write_text(header + "".join(line + "\n" for line in lines))
    (out / META_FILE).write_text(json.dumps({"n": n, "seed": seed, "version": GENERATOR_VERSION}))
    return out


def write_folder_dataset(out: str | Path, n: int, seed: int = 0) -> Path:
    """Write the same n samples into `out` in the folder layout (seg.data.folder): images/<name>.jpg and
    masks/<name>.png with 0 = background and 255 = pet (the trimap border is pet, as `data.uncertain=foreground`
    reads it), and test.txt naming the samples the Oxford layout puts in test."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    test = []
    for i, name, trimap in _write_images(out / "images", n, seed):
        Image.fromarray(np.where(trimap == 2, 0, 255).astype(np.uint8)).save(out / "masks" / f"{name}.png")
        if i % TEST_EVERY == TEST_EVERY - 1:
            test.append(name)
    (out / "test.txt").write_text("".join(f"{name}\n" for name in test))
    (out / META_FILE).write_text(json.dumps({"n": n, "seed": seed, "version": GENERATOR_VERSION, "layout": "folder"}))
    return out


def ensure_synthetic(root: str | Path, n: int, seed: int = 0, layout: str = "oxford") -> Path:
    """Generate the dataset at `root` unless one is there; safe when several processes race, or one is killed.

    Written with seg.data.staging (a temporary sibling folder renamed to `root` in one step: the first rename
    wins). Raises ConfigError if `root` lies under a file, holds other files, or holds a synthetic dataset
    generated with a different n or seed.
    """
    from seg.data.oxford import missing_layout

    def missing(folder: Path) -> bool:
        return not (folder / META_FILE).exists() if layout == "folder" else bool(missing_layout(folder))

    if layout not in LAYOUTS:
        raise ConfigError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    root = folder_or_error(root, "data.root")
    if root.parent.is_dir():
        remove_stale_builds(root.parent)
    if missing(root):
        write = write_folder_dataset if layout == "folder" else write_dataset
        build_atomically(root, functools.partial(write, n=n, seed=seed))
        if missing(root):
            raise ConfigError(f"data.root={root} holds other files; point it at a new folder for synthetic data")
    meta_file = root / META_FILE
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if (meta.get("n"), meta.get("seed")) != (n, seed):
            raise ConfigError(
                f"{root} holds synthetic data with n={meta.get('n')}, seed={meta.get('seed')}, not n={n}, "
                f"seed={seed}: point data.root at another folder or delete this one"
            )
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write synthetic pets in the Oxford-IIIT Pet or the folder layout.")
    parser.add_argument("--out", required=True, help="dataset folder to create")
    parser.add_argument("--n", type=int, default=300, help="number of images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layout", choices=LAYOUTS, default="oxford",
                        help="oxford: images/ + annotations/; folder: images/ + masks/ (train with data=folder)")
    args = parser.parse_args(argv)
    with exit_on_user_error():  # a bad --out is one line
        root = ensure_synthetic(args.out, args.n, args.seed, args.layout).resolve()
    print(f"synthetic pets (n={args.n}, seed={args.seed}, {args.layout} layout) in {root}")


if __name__ == "__main__":
    main()
