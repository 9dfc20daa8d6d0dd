"""Binary segmentation losses computed from logits.

Every loss is an ``nn.Module`` with ``forward(logits, target) -> scalar``, where
logits: (N, 1, H, W), any float dtype (bf16/fp16 under autocast is fine: losses are computed in float32);
target: (N, 1, H, W) float with values in {0, 1, IGNORE_INDEX}. Pixels equal to ``IGNORE_INDEX`` are
excluded from every loss; a batch with no valid pixel gives 0 (with a graph, so ``backward`` works).

Knob defaults live in the config schema (seg/schema.py), not here; so does the registry of losses (LOSSES).

Pixel losses (BCE, focal) are means over the valid pixels of the batch. Overlap losses (Dice, Tversky)
are computed per image on the valid pixels and averaged over the images that have a valid pixel, so
their value does not depend on how images are batched.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg.constants import IGNORE_INDEX


def _valid(target: Tensor) -> Tensor:
    """Bool mask (N, 1, H, W) of the pixels that count (target != IGNORE_INDEX)."""
    return target != IGNORE_INDEX


def _prepare(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """float32 logits, float32 target with ignored pixels set to 0, and the bool valid mask."""
    valid = _valid(target)
    return logits.float(), torch.where(valid, target.float(), 0.0), valid


def _masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``values`` over the ``valid`` pixels; 0 when there is none."""
    return torch.where(valid, values, 0.0).sum() / valid.sum().clamp_min(1)


class BCELoss(nn.Module):
    """Binary cross-entropy with logits (``binary_cross_entropy_with_logits``), mean over valid pixels."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        x, y, valid = _prepare(logits, target)
        return _masked_mean(F.binary_cross_entropy_with_logits(x, y, reduction="none"), valid)


class FocalLoss(nn.Module):
    """Sigmoid focal loss (Lin et al. 2017), mean over valid pixels; for hard {0, 1} targets.

    loss = -alpha_t (1 - p_t)^gamma log(p_t), with p_t = sigmoid(+-logit) the probability of the true
    class and alpha_t = alpha for pet pixels, 1 - alpha for background. ``alpha=None`` or negative turns
    the class weighting off (then gamma=0 gives BCE). Both logs use ``logsigmoid`` for stability.
    """

    def __init__(self, alpha: float | None, gamma: float) -> None:
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        x, y, valid = _prepare(logits, target)
        z = torch.where(y > 0.5, x, -x)  # logit of the true class
        loss = -torch.exp(self.gamma * F.logsigmoid(-z)) * F.logsigmoid(z)
        if self.alpha is not None and self.alpha >= 0:
            loss = loss * (self.alpha * y + (1 - self.alpha) * (1 - y))
        return _masked_mean(loss, valid)


class _PerImageOverlapLoss(nn.Module):
    """Base of the soft overlap losses: 1 - index(TP, FP, FN), per image, averaged over images.

    TP, FP, FN are soft counts over the valid pixels of each image, with p = sigmoid(logit):
    TP = sum p*g, FP = sum p*(1-g), FN = sum (1-p)*g. Images without a valid pixel are left out of the
    average (all-ignore batch: 0). ``smooth`` > 0 keeps the index defined for empty masks: an image
    with an empty target and an all-negative prediction has TP = FP = FN = 0, so index 1 and loss 0.
    """

    def __init__(self, smooth: float) -> None:
        super().__init__()
        if smooth <= 0:
            raise ValueError(f"smooth must be > 0 (it defines the empty-mask case), got {smooth}")
        self.smooth = smooth

    def index(self, tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
        """Per-image overlap index in [0, 1] from (N,) soft counts."""
        raise NotImplementedError

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        x, y, valid = _prepare(logits, target)
        p = torch.where(valid, torch.sigmoid(x), 0.0)
        dims = tuple(range(1, p.dim()))
        tp = (p * y).sum(dims)
        fp = p.sum(dims) - tp
        fn = y.sum(dims) - tp
        has_valid = valid.flatten(1).any(dim=1)
        return _masked_mean(1 - self.index(tp, fp, fn), has_valid)


class DiceLoss(_PerImageOverlapLoss):
    """Soft Dice loss per image: 1 - (2 TP + smooth) / (2 TP + FP + FN + smooth), i.e.
    1 - (2 sum p*g + smooth) / (sum p + sum g + smooth), averaged over images."""

    def __init__(self, smooth: float) -> None:
        super().__init__(smooth)

    def index(self, tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
        return (2 * tp + self.smooth) / (2 * tp + fp + fn + self.smooth)


class TverskyLoss(_PerImageOverlapLoss):
    """Tversky loss per image (Salehi et al. 2017): 1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth).

    ``alpha`` weighs false positives, ``beta`` false negatives (beta > alpha favours recall).
    alpha = beta = 0.5 gives the same value as ``DiceLoss(smooth=2 * smooth)``.
    """

    def __init__(self, alpha: float, beta: float, smooth: float) -> None:
        super().__init__(smooth)
        self.alpha = alpha
        self.beta = beta

    def index(self, tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
        return (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)


class WeightedSumLoss(nn.Module):
    """sum_i weight_i * loss_i(logits, target) over named terms ``{name: (weight, loss)}``."""

    def __init__(self, terms: Mapping[str, tuple[float, nn.Module]]) -> None:
        super().__init__()
        self.weights = {name: float(weight) for name, (weight, _) in terms.items()}
        self.terms = nn.ModuleDict({name: loss for name, (_, loss) in terms.items()})

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return sum(self.weights[name] * loss(logits, target) for name, loss in self.terms.items())


class BCEDiceLoss(WeightedSumLoss):
    """bce_weight * BCELoss + dice_weight * DiceLoss(smooth)."""

    def __init__(self, bce_weight: float, dice_weight: float, smooth: float) -> None:
        super().__init__({"bce": (bce_weight, BCELoss()), "dice": (dice_weight, DiceLoss(smooth))})


class BCETverskyLoss(WeightedSumLoss):
    """bce_weight * BCELoss + tversky_weight * TverskyLoss(alpha, beta, smooth)."""

    def __init__(
        self,
        bce_weight: float,
        tversky_weight: float,
        alpha: float,
        beta: float,
        smooth: float,
    ) -> None:
        super().__init__(
            {"bce": (bce_weight, BCELoss()), "tversky": (tversky_weight, TverskyLoss(alpha, beta, smooth))}
        )
