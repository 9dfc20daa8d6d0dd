"""One training epoch and one evaluation pass. No host sync per batch: metrics stay on the device."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader

from seg.engine.optim import LRSchedule
from seg.engine.progress import show_running
from seg.engine.runtime import Precision
from seg.errors import NonFiniteLossError
from seg.metrics import SegmentationMeter

Batch = tuple[torch.Tensor, torch.Tensor]
NAN_CHECK_EVERY = 50  # batches between checks for a non-finite loss (each check is one host sync)


def batches(
    loader: DataLoader, device: torch.device, channels_last: bool, limit: int | None = None
) -> Iterator[Batch]:
    """(images (N,3,H,W), masks (N,1,H,W)) on `device`, at most `limit` batches."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for images, masks in itertools.islice(loader, limit):
        images = images.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        yield images, masks.to(device, non_blocking=True)


def train_one_epoch(
    model: nn.Module,
    data: Iterable[Batch],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    scaler: torch.amp.GradScaler,
    precision: Precision,
    meter: SegmentationMeter,
    epoch: int,
    grad_clip: float | None = None,
) -> SegmentationMeter:
    """Train over `data` once; returns `meter` filled with the train loss and Dice. When `data` is a progress bar,
    it shows the running loss and Dice (seg.engine.progress.show_running).

    Raises NonFiniteLossError naming the epoch and batch when the loss becomes NaN or inf.
    """
    model.train()
    first_bad = None
    for i, (images, masks) in enumerate(data):
        with precision.autocast():
            logits = model(images)
            loss = loss_fn(logits, masks)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        schedule.after_batch()
        meter.update(logits.detach(), masks, loss.detach())
        first_bad = _track_non_finite(first_bad, loss.detach(), i)
        if (i + 1) % NAN_CHECK_EVERY == 0:
            _raise_if_non_finite(first_bad, epoch, precision.dtype is None)
        show_running(data, i + 1, meter)
    _raise_if_non_finite(first_bad, epoch, precision.dtype is None)
    return meter


def _track_non_finite(first_bad: torch.Tensor | None, loss: torch.Tensor, index: int) -> torch.Tensor:
    """On-device index of the first batch whose loss was not finite (-1: none yet)."""
    if first_bad is None:
        first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
    bad_now = ~torch.isfinite(loss) & (first_bad < 0)
    return torch.where(bad_now, torch.full_like(first_bad, index), first_bad)


def _raise_if_non_finite(first_bad: torch.Tensor | None, epoch: int, full_precision: bool) -> None:
    if first_bad is not None and (index := int(first_bad)) >= 0:
        raise NonFiniteLossError(epoch=epoch, batch=index + 1, full_precision=full_precision)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Iterable[Batch],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    precision: Precision,
    meter: SegmentationMeter,
) -> SegmentationMeter:
    """Loss and Dice of `model` over `data`, accumulated into `meter`."""
    model.eval()
    for images, masks in data:
        with precision.autocast():
            logits = model(images)
            loss = loss_fn(logits, masks)
        meter.update(logits.float(), masks, loss.float())
    return meter
