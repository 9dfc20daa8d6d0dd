"""Load a trained model from a checkpoint, for evaluation and prediction."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from seg.engine.checkpoint import load_checkpoint, load_model_weights


def load_trained_model(path: str | Path, device: torch.device) -> tuple[nn.Module, DictConfig]:
    """The model saved in checkpoint `path` (eval mode, on `device`) and the config it was trained with."""
    ckpt = load_checkpoint(path, map_location="cpu")
    train_cfg = OmegaConf.create(ckpt["config"])
    model = instantiate(train_cfg.model)
    load_model_weights(model, ckpt, path)
    return model.to(device).eval(), train_cfg


def predict_probs(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Foreground probabilities (N, 1, H, W) in [0, 1] for normalised images (N, 3, H, W)."""
    with torch.no_grad():
        return torch.sigmoid(model(images).float())
