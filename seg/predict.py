"""Predict masks for images: `python -m seg.predict ckpt=<best.pt> input=<dir|glob> output=<dir>` (`seg-predict`).

For every readable image (any mode or size) writes `<name>_mask.png` (0/255, at the image's own resolution) and
`<name>_overlay.png` (the predicted region tinted and outlined) into `output`, mirroring the inputs' sub-folders
so that two images of the same name never share an output, and `manifest.csv` mapping every input to its outputs
or to the reason it was skipped. Uses the checkpoint's image size and threshold unless set. `ckpt=[a.pt,b.pt]` or
`ensemble=<study dir> arm=<arm>` predicts with the ensemble (mean probability), `tta=hflip|flips` with flipped views.
Never writes outside `output`, never overwrites a file (an input, an earlier prediction), and refuses an `output`
that overlaps the inputs.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
from pathlib import Path

import hydra
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from PIL import Image

from seg.claims import held
from seg.config import CONF_DIR, register, require, typed_config
from seg.data import BadImageError, eval_transform, read_rgb
from seg.engine.runtime import freeze_imports, resolve_device
from seg.ensemble import checkpoint_paths, load_members
from seg.errors import SegError, exit_on_user_error
from seg.files import open_new
from seg.inference import predict_probs
from seg.schema import PredictConfig
from seg.viz import error_overlay

log = logging.getLogger("seg.predict")
register()
MANIFEST = "manifest.csv"


def list_inputs(pattern: str) -> tuple[Path, list[Path], list[tuple[Path, str]]]:
    """(base folder, files, skipped): every file under a folder (recursively, sorted), or the files a glob matches;
    a symlink that leads outside the base folder is not read, but listed in `skipped` with the reason."""
    path = Path(pattern).expanduser()
    if path.is_dir():
        base, found = path.resolve(), sorted(_located(p) for p in path.rglob("*") if p.is_file())
    else:
        found = sorted(_located(Path(p)) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        base = Path(os.path.commonpath([str(p.parent) for p in found])) if found else path.parent
    if not found:
        raise SegError(f"input={pattern}: no files found (give a folder or a glob such as 'photos/*.jpg')")
    outside = [(p, f"a symlink to {p.resolve()}, outside input={base}: not read") for p in found
               if not p.resolve().is_relative_to(base.resolve())]  # fmt: skip
    skipped = {p for p, _ in outside}
    return base, [p for p in found if p not in skipped], outside


def _located(path: Path) -> Path:
    """`path` in its resolved folder, itself unresolved (a symlink keeps its own name)."""
    return path.absolute().parent.resolve() / path.name


def check_apart(output_dir: Path, base: Path, files: list[Path]) -> None:
    """SegError when `output` is an input folder, lies inside one, or holds an input."""
    out = output_dir.resolve()
    folders = {base.resolve(), *(f.resolve().parent for f in files)}
    if any(out == d or out.is_relative_to(d) for d in folders) or any(f.resolve().is_relative_to(out) for f in files):
        raise SegError(
            f"output={output_dir} overlaps the inputs; choose a folder apart from them, e.g. output=predictions/"
        )


def output_paths(output_dir: Path, base: Path, source: Path) -> tuple[Path, Path]:
    """`<output>/<path of source under base, without suffix>_mask.png` and `..._overlay.png`."""
    relative = source.relative_to(base).with_suffix("")
    stem = output_dir / relative.parent / (relative.name or "image")
    return stem.with_name(stem.name + "_mask.png"), stem.with_name(stem.name + "_overlay.png")


def predict_folder(cfg: PredictConfig) -> tuple[int, list[tuple[Path, str]]]:
    """Write masks and overlays for every readable input; returns (images predicted, skipped with reasons)."""
    device = resolve_device(cfg.device)
    members = load_members(checkpoint_paths(cfg.ckpt, cfg.ensemble, cfg.arm), cfg.tta, device,
                           image_size=cfg.image_size, threshold=cfg.threshold)  # fmt: skip
    model, trained = members.model, members.trained
    transform = eval_transform(cfg.image_size or trained.data.image_size)
    threshold = cfg.threshold if cfg.threshold is not None else trained.threshold
    output_dir = Path(cfg.output).expanduser()
    base, files, outside = list_inputs(cfg.input)
    check_apart(output_dir, base, files)
    if output_dir.is_file():
        raise SegError(f"output={output_dir} is a file; give a folder")
    with held(output_dir, "seg.predict", hint="give another output folder, or wait until it ends"):
        if os.path.lexists(output_dir / MANIFEST):
            raise SegError(f"output={output_dir} already holds predictions ({MANIFEST}); choose a new folder")
        return _predict_all(cfg, (model, transform, threshold, device), output_dir, base, files, outside)


def _predict_all(cfg: PredictConfig, predictor: tuple, output_dir: Path, base: Path, files: list[Path],
                 outside: list[tuple[Path, str]]) -> tuple[int, list[tuple[Path, str]]]:  # fmt: skip
    """Masks and overlays of `files`, each created new (never through a symlink), then manifest.csv (which lists
    the `outside` inputs as skipped too)."""
    model, transform, threshold, device = predictor
    Image.MAX_IMAGE_PIXELS = cfg.max_pixels
    rows, skipped = [[str(p), "", "", reason] for p, reason in outside], list(outside)
    for source in files:
        mask_path, overlay_path = output_paths(output_dir, base, source)
        reason = next((f"would overwrite {p}" for p in (mask_path, overlay_path) if os.path.lexists(p)), None)
        escapes = not all(p.resolve().is_relative_to(output_dir.resolve()) for p in (mask_path, overlay_path))
        if reason is None and escapes:
            reason = f"an output path would leave output={output_dir}"
        image = None
        if reason is None:
            try:
                image = read_rgb(source)
            except BadImageError as e:
                reason = str(e)
        if image is None:
            skipped.append((source, reason))
            rows.append([str(source), "", "", reason])
            continue
        x = transform(image=image)["image"].unsqueeze(0).to(device)
        probs = F.interpolate(predict_probs(model, x), size=image.shape[:2], mode="bilinear", align_corners=False)
        mask = (probs[0, 0] > threshold).cpu().numpy()
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        with open_new(mask_path) as f:
            Image.fromarray(mask.astype(np.uint8) * 255).save(f, format="PNG")
        with open_new(overlay_path) as f:
            Image.fromarray(error_overlay(image, mask, alpha=cfg.overlay_alpha)).save(f, format="PNG")
        rows.append([str(source), *(str(p.relative_to(output_dir)) for p in (mask_path, overlay_path)), ""])
    with open_new(output_dir / MANIFEST, "w") as f:
        csv.writer(f).writerows([["input", "mask", "overlay", "skipped"], *rows])
    return len(files) - len(skipped) + len(outside), skipped


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    torch.set_grad_enabled(False)
    freeze_imports()
    with exit_on_user_error():
        typed: PredictConfig = typed_config(cfg)
        require(typed.input, "input", "input=photos/ or 'input=photos/**/*.jpg'")
        require(typed.output, "output", "output=predictions/")
        done, skipped = predict_folder(typed)
    print(f"Wrote {done} masks and overlays to {typed.output} (manifest: {Path(typed.output) / MANIFEST})")
    if skipped:
        print(f"Skipped {len(skipped)} file(s):")
        for path, reason in skipped:
            print(f"  {path}: {reason}")


if __name__ == "__main__":
    main()
