"""Predict masks for a folder of images: `python -m seg.predict ckpt=<best.pt> input=<dir|glob> output=<dir>`.

For every readable image (any mode or size) writes `<name>_mask.png` (0/255, at the image's own
resolution) and `<name>_overlay.png` into `output`. Unreadable files are listed and skipped.
Nothing is written outside `output`.
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path

import hydra
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from PIL import Image

from seg.config import register_resolvers
from seg.data import BadImageError, eval_transform, read_rgb
from seg.engine.runtime import resolve_device
from seg.errors import SegError, exit_on_user_error
from seg.inference import load_trained_model, predict_probs

log = logging.getLogger("seg.predict")
register_resolvers()


def list_inputs(pattern: str) -> list[Path]:
    """Files of a folder (sorted), or the files a glob pattern matches."""
    path = Path(pattern).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
    else:
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if not files:
        raise SegError(f"input={pattern}: no files found (give a folder or a glob such as 'photos/*.jpg')")
    return files


def output_path(output_dir: Path, source: Path, suffix: str, taken: set[Path]) -> Path:
    """`<output_dir>/<stem><suffix>`, unique among `taken`, and never outside `output_dir`."""
    stem = source.stem or "image"
    candidate = output_dir / f"{stem}{suffix}"
    n = 1
    while candidate in taken:
        candidate = output_dir / f"{stem}_{n}{suffix}"
        n += 1
    if not candidate.resolve().is_relative_to(output_dir.resolve()):
        raise SegError(f"refusing to write {candidate}: it is outside output={output_dir}")
    taken.add(candidate)
    return candidate


def overlay(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int], alpha: float) -> np.ndarray:
    """`image` (H, W, 3) uint8 with the pixels of boolean `mask` (H, W) tinted by `color`."""
    out = image.astype(np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, dtype=np.float32)
    return out.round().astype(np.uint8)


def predict_folder(cfg: DictConfig) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Write mask and overlay PNGs for every readable input; returns (written, skipped with reasons)."""
    device = resolve_device(cfg.device)
    model, train_cfg = load_trained_model(cfg.ckpt, device)
    transform = eval_transform(int(train_cfg.data.image_size))
    output_dir = Path(cfg.output)
    output_dir.mkdir(parents=True, exist_ok=True)
    Image.MAX_IMAGE_PIXELS = int(cfg.max_pixels)
    written: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    taken: set[Path] = set()
    for source in list_inputs(str(cfg.input)):
        try:
            image = read_rgb(source)
        except BadImageError as e:
            skipped.append((source, str(e)))
            continue
        try:
            mask_path = output_path(output_dir, source, "_mask.png", taken)
            overlay_path = output_path(output_dir, source, "_overlay.png", taken)
        except SegError as e:
            skipped.append((source, str(e)))
            continue
        x = transform(image=image)["image"].unsqueeze(0).to(device)
        probs = predict_probs(model, x)
        probs = F.interpolate(probs, size=image.shape[:2], mode="bilinear", align_corners=False)
        mask = (probs[0, 0] > cfg.threshold).cpu().numpy()
        Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
        Image.fromarray(overlay(image, mask, tuple(cfg.overlay_color), cfg.overlay_alpha)).save(overlay_path)
        written += [mask_path, overlay_path]
    return written, skipped


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    torch.set_grad_enabled(False)
    with exit_on_user_error():
        written, skipped = predict_folder(cfg)
    print(f"Wrote {len(written) // 2} masks and overlays to {cfg.output}")
    if skipped:
        print(f"Skipped {len(skipped)} file(s) (unreadable, or an output path outside {cfg.output}):")
        for path, reason in skipped:
            print(f"  {path}: {reason}")


if __name__ == "__main__":
    main()
