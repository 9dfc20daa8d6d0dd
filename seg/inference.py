"""A trained model from a checkpoint, for evaluation and prediction, and its foreground probabilities."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from seg.models import build_model
from seg.registry import option_args
from seg.config import train_config_from_yaml
from seg.errors import CheckpointError
from seg.rundir import Checkpoint, load_checkpoint
from seg.schema import TrainConfig


def load_weights(model: nn.Module, ckpt: Checkpoint, source: str | Path) -> None:
    """Load the checkpoint's weights into `model`, with a clear error when they do not fit it."""
    try:
        model.load_state_dict(ckpt.model)
    except RuntimeError as e:
        raise CheckpointError(
            f"{source}: its weights do not fit the model its config describes: {str(e).splitlines()[0]}"
        ) from e


def load_trained_model(path: str | Path, device: torch.device) -> tuple[nn.Module, TrainConfig]:
    """The model saved in checkpoint `path` (eval mode, on `device`) and the checked config it was trained with.

    The model is built from the registry by the config's model name and arguments; pretrained encoder weights
    are not loaded (the checkpoint has the trained ones).
    """
    ckpt = load_checkpoint(path, map_location="cpu")
    cfg = train_config_from_yaml(ckpt.config, str(path))
    args = option_args(cfg.model)
    if "encoder_weights" in args:
        args["encoder_weights"] = None
    model = build_model(cfg.model.name, args)
    load_weights(model, ckpt, path)
    return model.to(device).eval(), cfg


def predict_probs(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Foreground probabilities (N, 1, H, W) in [0, 1] for normalised images (N, 3, H, W)."""
    with torch.no_grad():
        return torch.sigmoid(model(images).float())
