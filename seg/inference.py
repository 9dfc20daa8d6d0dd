"""Trained models from checkpoints, for evaluation and prediction; their foreground probabilities, with test-time
augmentation (flips) and ensembles averaged in probability space."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from seg.config import train_config_from_yaml
from seg.errors import CheckpointError
from seg.models import build_model
from seg.registry import option_args
from seg.rundir import Checkpoint, load_checkpoint
from seg.schema import TrainConfig

TTA_FLIPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": ((),),
    "hflip": ((), (-1,)),
    "flips": ((), (-1,), (-2,), (-2, -1)),  # identity, horizontal, vertical, both (nnU-Net's mirroring in 2-D)
}
"""TTA name -> the dims each view flips (of an (N, C, H, W) batch)."""


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


class Averaged(nn.Module):
    """Models and flipped views as one model: forward((N, C, H, W) images) -> (N, 1, H, W) logits of the mean
    foreground probability over every model and every view, each view's probabilities flipped back first.

    The models run one at a time on each batch, so activations of only one are alive at once. With ``offload``
    the members stay on the CPU and each moves to the batch's device for its turn (weights that do not fit
    together on the accelerator). Logits are `logit(mean p)` clamped to [1e-6, 1 - 1e-6], so the metrics and the
    loss see the averaged probabilities.
    """

    def __init__(self, models: Sequence[nn.Module], tta: str = "none", offload: bool = False) -> None:
        super().__init__()
        self.members = nn.ModuleList(models)
        self.flips = TTA_FLIPS[tta]
        self.offload = offload

    def forward(self, images: Tensor) -> Tensor:
        total = torch.zeros((), device=images.device)
        for model in self.members:
            if self.offload:
                model.to(images.device)
            for dims in self.flips:
                probs = torch.sigmoid(model(images.flip(dims) if dims else images).float())
                total = total + (probs.flip(dims) if dims else probs)
            if self.offload:
                model.to("cpu")
        return torch.logit(total / (len(self.members) * len(self.flips)), eps=1e-6)


def combine(models: Sequence[nn.Module], tta: str, device: torch.device) -> nn.Module:
    """One model for `models` (on the CPU or `device`) with test-time augmentation `tta`: the model itself when
    there is one and no TTA (results as before), else an :class:`Averaged` on `device`, offloading when the
    members' weights would fill more than half of the accelerator's free memory."""
    if len(models) == 1 and tta == "none":
        return models[0].to(device).eval()
    offload = False
    if device.type == "cuda":
        weights = sum(p.numel() * p.element_size() for m in models for p in m.parameters())
        offload = weights > torch.cuda.mem_get_info(device)[0] / 2
    members = [m.to("cpu" if offload else device).eval() for m in models]
    return Averaged(members, tta, offload).eval()


def predict_probs(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Foreground probabilities (N, 1, H, W) in [0, 1] for normalised images (N, 3, H, W)."""
    with torch.no_grad():
        return torch.sigmoid(model(images).float())
