"""Losses against hand-computed values on tiny tensors, ignore pixels, empty masks, batching, configs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from configs import compose_config

from seg.constants import IGNORE_INDEX
from seg.losses import BCEDiceLoss, BCELoss, BCETverskyLoss, DiceLoss, FocalLoss, TverskyLoss
from seg.schema import LOSSES

torch.set_num_threads(1)
CONF = Path(__file__).resolve().parents[1] / "conf" / "loss"
IGN = float(IGNORE_INDEX)
LN2 = math.log(2)


def t(rows: list[list[float]]) -> torch.Tensor:
    """A (1, 1, H, W) float tensor."""
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def close(value: torch.Tensor, expected: float, tol: float = 1e-6) -> bool:
    return abs(value.item() - expected) < tol


def test_bce_mean_over_valid_pixels():
    logits, target = t([[2.0, -1.0], [0.0, 3.0]]), t([[1, 0], [IGN, 0]])
    # BCE with logits: y=1 -> softplus(-x), y=0 -> softplus(x); the ignored pixel is left out
    expected = (softplus(-2.0) + softplus(-1.0) + softplus(3.0)) / 3
    assert close(BCELoss()(logits, target), expected)


def test_dice_hand_computed():
    # p = 0.5 on 3 valid pixels: TP = 0.5, sum p = 1.5, sum g = 1
    loss = DiceLoss(smooth=1.0)(t([[0.0, 0.0], [0.0, 0.0]]), t([[1, 0], [0, IGN]]))
    assert close(loss, 1 - (2 * 0.5 + 1) / (1.5 + 1 + 1))


@pytest.mark.parametrize(
    ("logit", "target", "expected"),
    [
        (-30.0, 0.0, 0.0),  # empty target, empty prediction: (0 + 1) / (0 + 1) -> loss 0
        (30.0, 0.0, 1 - 1 / (4 + 1)),  # empty target, 4 false positives
        (-30.0, 1.0, 1 - 1 / (4 + 1)),  # 4 false negatives
        (30.0, 1.0, 0.0),  # perfect: (8 + 1) / (8 + 1)
    ],
)
def test_dice_empty_and_full_masks(logit, target, expected):
    assert close(DiceLoss(1.0)(torch.full((1, 1, 2, 2), logit), torch.full((1, 1, 2, 2), target)), expected)


def test_tversky_hand_computed():
    # p = 0.5 on 3 valid pixels, one positive: TP = 0.5, FP = 1.0, FN = 0.5
    loss = TverskyLoss(alpha=0.3, beta=0.7, smooth=1.0)(t([[0.0, 0.0], [0.0, 0.0]]), t([[1, 0], [0, IGN]]))
    assert close(loss, 1 - (0.5 + 1) / (0.5 + 0.3 * 1.0 + 0.7 * 0.5 + 1))


def test_tversky_alpha_weighs_false_positives_beta_false_negatives():
    positive, empty, full = torch.full((1, 1, 2, 2), 30.0), torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    assert close(TverskyLoss(alpha=1.0, beta=0.0, smooth=1.0)(positive, empty), 1 - 1 / (4 + 1))  # 4 FP
    assert close(TverskyLoss(alpha=0.0, beta=1.0, smooth=1.0)(positive, empty), 0.0)
    assert close(TverskyLoss(alpha=0.0, beta=1.0, smooth=1.0)(-positive, full), 1 - 1 / (4 + 1))  # 4 FN
    assert close(TverskyLoss(alpha=1.0, beta=0.0, smooth=1.0)(-positive, full), 0.0)


def test_tversky_half_half_is_dice_with_twice_the_smooth():
    logits, target = torch.randn(3, 1, 4, 5), torch.randint(0, 2, (3, 1, 4, 5)).float()
    torch.testing.assert_close(
        TverskyLoss(0.5, 0.5, smooth=1.0)(logits, target), DiceLoss(2.0)(logits, target)
    )


def _random_pair(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, 1, 5, 6, generator=g)
    target = torch.randint(0, 2, (1, 1, 5, 6), generator=g).float()
    target[0, 0, 0, :3] = IGN
    return logits, target


@pytest.mark.parametrize("loss_fn", [DiceLoss(1.0), TverskyLoss(0.3, 0.7, 1.0)])
def test_overlap_losses_are_per_image_means(loss_fn):
    (la, ta), (lb, tb) = _random_pair(0), _random_pair(1)
    tb[0, 0, 1:] = IGN  # different numbers of valid pixels must not matter
    batch = loss_fn(torch.cat([la, lb]), torch.cat([ta, tb]))
    torch.testing.assert_close(batch, (loss_fn(la, ta) + loss_fn(lb, tb)) / 2)
    # an all-ignore image is left out of the average
    torch.testing.assert_close(
        loss_fn(torch.cat([la, lb]), torch.cat([ta, torch.full_like(tb, IGN)])), loss_fn(la, ta)
    )


def test_focal_hand_computed():
    # logit 0: p_t = 0.5, (1 - p_t)^2 = 0.25, -log p_t = ln 2; alpha_t = 0.25 (pet), 0.75 (background)
    loss = FocalLoss(alpha=0.25, gamma=2.0)(t([[0.0, 0.0, 5.0]]), t([[1, 0, IGN]]))
    assert close(loss, (0.25 + 0.75) * 0.25 * LN2 / 2)


def test_focal_is_stable_for_large_logits():
    # confidently wrong: p_t = sigmoid(-100), (1 - p_t)^2 -> 1, -log p_t -> 100
    loss = FocalLoss(alpha=0.25, gamma=2.0)(t([[-100.0]]), t([[1.0]]))
    assert close(loss, 0.25 * 100, tol=1e-4)


@pytest.mark.parametrize("alpha", [None, -1.0])
def test_focal_without_alpha_and_gamma_0_is_bce(alpha):
    logits, target = _random_pair(2)
    torch.testing.assert_close(FocalLoss(alpha=alpha, gamma=0.0)(logits, target), BCELoss()(logits, target))


def test_combined_losses_are_weighted_sums():
    logits, target = _random_pair(3)
    bce, dice, tversky = (
        BCELoss()(logits, target),
        DiceLoss(1.0)(logits, target),
        TverskyLoss(0.2, 0.8, 1.0)(logits, target),
    )
    torch.testing.assert_close(BCEDiceLoss(0.3, 0.7, 1.0)(logits, target), 0.3 * bce + 0.7 * dice)
    torch.testing.assert_close(BCETverskyLoss(2.0, 1.0, 0.2, 0.8, 1.0)(logits, target), 2.0 * bce + 1.0 * tversky)


ALL_LOSSES = [
    BCELoss(), DiceLoss(1.0), TverskyLoss(0.3, 0.7, 1.0), FocalLoss(0.25, 2.0), BCEDiceLoss(0.5, 0.5, 1.0),
    BCETverskyLoss(0.5, 0.5, 0.3, 0.7, 1.0),
]


@pytest.mark.parametrize("loss_fn", ALL_LOSSES, ids=lambda m: type(m).__name__)
def test_all_ignore_batch_is_zero_with_a_graph(loss_fn):
    logits = torch.randn(2, 1, 3, 3, requires_grad=True)
    loss = loss_fn(logits, torch.full((2, 1, 3, 3), IGN))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


@pytest.mark.parametrize("loss_fn", ALL_LOSSES, ids=lambda m: type(m).__name__)
def test_ignored_pixels_do_not_change_the_loss_or_get_gradient(loss_fn):
    logits, target = _random_pair(4)
    logits.requires_grad_(True)
    other = logits.detach().clone()
    other[target == IGN] = 50.0  # whatever the logits are where the target is ignored
    loss = loss_fn(logits, target)
    torch.testing.assert_close(loss, loss_fn(other, target))
    loss.backward()
    assert torch.all(logits.grad[target == IGN] == 0)


@pytest.mark.parametrize("loss_fn", ALL_LOSSES, ids=lambda m: type(m).__name__)
def test_low_precision_logits_give_a_float32_loss(loss_fn):
    logits, target = _random_pair(5)
    loss = loss_fn(logits.bfloat16(), target)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, loss_fn(logits.bfloat16().float(), target))


def test_smooth_must_be_positive():
    with pytest.raises(ValueError, match="smooth"):
        DiceLoss(smooth=0.0)


@pytest.mark.parametrize("name", sorted(p.stem for p in CONF.glob("*.yaml")))
def test_every_loss_option_builds_from_its_config(name):
    logits, target = _random_pair(6)
    loss = LOSSES.build(compose_config(f"loss={name}").loss)(logits, target)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
