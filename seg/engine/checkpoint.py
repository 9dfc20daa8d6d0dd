"""Checkpoints: written atomically, loaded with `weights_only=True`.

A checkpoint is a dict of tensors and plain values only (so `torch.load(weights_only=True)` accepts
it and refuses anything that would run code):
    format, model_class, model, optimizer, schedule, scaler, epoch, best_dice, rng, config (YAML text).
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seg.errors import CheckpointError

FORMAT = "seg-checkpoint-v1"


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write `state` to `path` atomically: a temp file in the same folder, fsync, then rename.

    A crash (even SIGKILL) mid-write leaves the previous file at `path` intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint of this suite; refuse foreign files and pickles that would run code."""
    path = Path(path)
    if path.is_dir():
        path = resolve_resume_path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"refusing to load {path}: it is not a seg checkpoint that loads with weights_only=True "
            f"({first_line})"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a seg checkpoint (no '{FORMAT}' marker)")
    return ckpt


def resolve_resume_path(target: str | Path) -> Path:
    """`resume=` accepts a run directory (uses checkpoints/last.pt) or a checkpoint file."""
    target = Path(target)
    if target.is_dir():
        candidate = target / "checkpoints" / "last.pt"
        if not candidate.is_file():
            raise CheckpointError(f"resume={target}: no checkpoints/last.pt in that run directory")
        return candidate
    if not target.is_file():
        raise CheckpointError(f"resume={target}: no such run directory or checkpoint file")
    return target


def load_model_weights(model: torch.nn.Module, ckpt: dict[str, Any], source: str | Path) -> None:
    """Load the model weights of `ckpt`, with a clear error when it was trained with another model."""
    model_class = type(model).__name__
    if ckpt.get("model_class") != model_class:
        raise CheckpointError(
            f"{source} holds a {ckpt.get('model_class')} but the config builds a {model_class}; "
            f"choose the matching model group (e.g. model={_group_name(ckpt.get('model_class'))})"
        )
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(
            f"{source} does not fit this {model_class} (different width or options: set model.* as in "
            f"the checkpoint's config): {str(e).splitlines()[0]}"
        ) from e


def restore_training(
    resume: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    scaler: torch.amp.GradScaler,
    device: torch.device,
) -> dict[str, Any]:
    """Load `resume` (run dir or checkpoint) into the training objects and the RNGs; returns its train state."""
    path = resolve_resume_path(resume)
    ckpt = load_checkpoint(path, map_location=device)
    load_model_weights(model, ckpt, path)
    optimizer.load_state_dict(ckpt["optimizer"])
    schedule.load_state_dict(ckpt["schedule"])
    scaler.load_state_dict(ckpt["scaler"])
    restore_rng_state(ckpt["rng"])
    return ckpt["state"]


def _group_name(model_class: str | None) -> str:
    """The `model=` option that builds `model_class`, from the model registry."""
    from seg.models import MODELS

    return next((name for name, cls in MODELS.items() if cls.__name__ == model_class), "<name>")


def rng_state() -> dict[str, Any]:
    """RNG states of python, numpy and torch (and CUDA), as tensors and plain values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
