"""Segmentation models: images (N, C, H, W) -> one logit channel (N, 1, H, W), registered with their configs in
seg.schema (MODELS).

A model class may define `check_args(**args, image_size)` (rules its config keys must follow, checked with the
config before any work) and `prepare_weights(**args)` (fetch pretrained files before any data work).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from seg.models.resnet_unet import ResNet34UNet
from seg.models.smp import SmpModel
from seg.models.unet import UNet
from seg.schema import MODELS


def build_model(name: str, args: dict[str, Any]) -> nn.Module:
    """The model registered as `name` (seg.schema MODELS) with its config's `args`; ValueError for an unknown name."""
    return MODELS.builder(name)(**args)


def check_model_args(name: str, args: dict[str, Any], image_size: int) -> None:
    """The model's own rules on its arguments and the image size (ConfigError), if it has any."""
    check = getattr(MODELS.builder(name), "check_args", None)
    if check is not None:
        check(**args, image_size=image_size)


def prepare_weights(name: str, args: dict[str, Any]) -> None:
    """Fetch the pretrained files the model will load (MissingWeightsError, one line, when that fails)."""
    prepare = getattr(MODELS.builder(name), "prepare_weights", None)
    if prepare is not None:
        prepare(**args)


__all__ = ["MODELS", "ResNet34UNet", "SmpModel", "UNet", "build_model", "check_model_args", "prepare_weights"]
