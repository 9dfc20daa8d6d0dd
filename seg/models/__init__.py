"""Segmentation models: images (N, C, H, W) -> one logit channel (N, 1, H, W)."""

from __future__ import annotations

from typing import Any

from torch import nn

from seg.models.resnet_unet import ResNet34UNet
from seg.models.unet import UNet

MODELS: dict[str, type[nn.Module]] = {"unet": UNet, "resnet34_unet": ResNet34UNet}
"""Model name (the file name of its config in conf/model) -> class."""


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate the model registered as ``name`` with ``kwargs``; ValueError for an unknown name."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)


__all__ = ["MODELS", "ResNet34UNet", "UNet", "build_model"]
