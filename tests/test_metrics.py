"""Metrics against hand-computed values: empty masks, overlap, ignore pixels, pooled scores, the meter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seg.constants import IGNORE_INDEX
from seg.metrics import STATE_FIELDS, SegmentationMeter, confusion_counts, summary_stats


def per_image_dice(logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(N,) hard Dice per image, written out here as the tests' reference: 1.0 when both masks are empty."""
    i, p, g = (c.double() for c in confusion_counts(logits, target, threshold))
    return torch.where(p + g > 0, 2 * i / (p + g).clamp_min(1), 1.0).float()


def per_image_iou(logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(N,) hard IoU per image, the tests' reference, with the same empty-mask convention."""
    i, p, g = (c.double() for c in confusion_counts(logits, target, threshold))
    return torch.where(p + g - i > 0, i / (p + g - i).clamp_min(1), 1.0).float()

torch.set_num_threads(1)
IGN = float(IGNORE_INDEX)


def logits_of(pred: list[list[list[int]]]) -> torch.Tensor:
    """(N, 1, H, W) logits that threshold to the given 0/1 masks."""
    return torch.where(torch.tensor(pred, dtype=torch.bool), 10.0, -10.0)[:, None]


def target_of(masks: list[list[list[float]]]) -> torch.Tensor:
    return torch.tensor(masks, dtype=torch.float32)[:, None]


# 2x2 images: prediction, target, |P∩G|, |P|, |G| over valid pixels, Dice, IoU
CASES = [
    ([[0, 0], [0, 0]], [[0, 0], [0, 0]], 0, 0, 0, 1.0, 1.0),  # both empty
    ([[0, 0], [0, 0]], [[1, 0], [0, 0]], 0, 0, 1, 0.0, 0.0),  # prediction empty
    ([[1, 0], [0, 0]], [[0, 0], [0, 0]], 0, 1, 0, 0.0, 0.0),  # target empty
    ([[1, 1], [0, 0]], [[1, 0], [1, 0]], 1, 2, 2, 0.5, 1 / 3),  # partial overlap
    ([[1, 1], [1, 0]], [[1, IGN], [0, 0]], 1, 2, 1, 2 / 3, 0.5),  # the ignored pixel is left out
]
PRED = logits_of([c[0] for c in CASES])
TARGET = target_of([c[1] for c in CASES])


def test_per_image_dice_and_iou_hand_computed():
    torch.testing.assert_close(per_image_dice(PRED, TARGET), torch.tensor([c[5] for c in CASES]))
    torch.testing.assert_close(per_image_iou(PRED, TARGET), torch.tensor([c[6] for c in CASES]))


def test_threshold_is_strict_on_probabilities():
    # logit 0 -> probability 0.5, not > 0.5: predicted empty
    assert per_image_dice(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).item() == 1.0
    assert per_image_dice(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), threshold=0.4).item() == 0.0


def test_meter_pooled_scores_hand_computed():
    meter = SegmentationMeter()
    meter.update(PRED[:2], TARGET[:2], torch.tensor(1.0))
    meter.update(PRED[2:], TARGET[2:], torch.tensor(2.0))
    intersection, pred, gt = (sum(c[i] for c in CASES) for i in (2, 3, 4))  # 2, 5, 4
    m = meter.compute()
    assert m["count"] == 5
    assert m["dice"] == pytest.approx(sum(c[5] for c in CASES) / 5)
    assert m["dice_pooled"] == pytest.approx(2 * intersection / (pred + gt))  # 4 / 9
    assert m["iou_pooled"] == pytest.approx(intersection / (pred + gt - intersection))  # 2 / 7
    assert m["loss"] == pytest.approx((2 * 1.0 + 3 * 2.0) / 5)  # weighted by batch size


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for n in (3, 1, 4):
        target = torch.randint(0, 2, (n, 1, 6, 7), generator=g).float()
        target[torch.rand(target.shape, generator=g) < 0.2] = IGN
        out.append((torch.randn(n, 1, 6, 7, generator=g), target))
    return out


def test_meter_over_batches_equals_per_image_dice_of_the_concatenation():
    meter = SegmentationMeter(keep_per_image=True)
    for logits, target in _batches():
        meter.update(logits, target)
    expected = per_image_dice(torch.cat([b[0] for b in _batches()]), torch.cat([b[1] for b in _batches()]))
    torch.testing.assert_close(meter.per_image(), expected.double())
    m = meter.compute()
    assert m["dice"] == pytest.approx(expected.mean().item())
    assert m["count"] == 8
    assert math.isnan(m["loss"])  # no loss was given


def test_meter_state_round_trip_and_sum_across_meters():
    batches = _batches()
    whole, first, second = SegmentationMeter(), SegmentationMeter(), SegmentationMeter()
    for i, (logits, target) in enumerate(batches):
        loss = torch.tensor(0.1 * (i + 1))
        whole.update(logits, target, loss)
        (first if i == 0 else second).update(logits, target, loss)
    state = whole.state()
    assert state.dtype == torch.float64 and state.shape == (len(STATE_FIELDS),)
    restored = SegmentationMeter()
    restored.load_state(state)
    assert restored.compute() == whole.compute()
    first.load_state(first.state() + second.state())  # what an all_reduce of two ranks gives
    assert first.compute() == pytest.approx(whole.compute())


def test_meter_reset_and_empty():
    meter = SegmentationMeter(keep_per_image=True)
    meter.update(PRED, TARGET)
    meter.reset()
    assert meter.per_image().numel() == 0
    m = meter.compute()
    assert m["count"] == 0 and math.isnan(m["dice"])
    with pytest.raises(RuntimeError, match="keep_per_image"):
        SegmentationMeter().per_image()


def test_summary_stats_matches_numpy():
    values = [0.9, 0.0, 0.95, 0.5, 0.99, 0.7]
    stats = summary_stats(torch.tensor(values))
    a = np.array(values)
    assert stats == pytest.approx(
        {"mean": a.mean(), "median": 0.8, "std": a.std(), "min": 0.0, "max": 0.99, "count": 6}
    )
    assert stats["std"] == pytest.approx(np.std(a, ddof=0))  # population std
    assert summary_stats(values) == pytest.approx(stats)
    assert summary_stats([])["count"] == 0
