"""Progress bars that stay quiet when output is not a terminal (logs, CI, sweeps)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.contrib.logging import logging_redirect_tqdm
from tqdm.std import tqdm as Bar

from seg.metrics import SegmentationMeter

T = TypeVar("T")

POSTFIX_EVERY = 10
"""Batches between updates of a bar's running loss and Dice (each update is one host sync)."""


def progress(items: Iterable[T], enabled: str = "auto", **kwargs) -> Iterable[T]:
    """`items` wrapped in a tqdm bar when enabled (`trainer.progress`: auto, only when stderr is a terminal |
    true | false)."""
    enabled = str(enabled).lower()
    show = sys.stderr.isatty() if enabled == "auto" else enabled == "true"
    return LoggingBar(items, leave=False, dynamic_ncols=True, **kwargs) if show else items


class LoggingBar(Bar):
    """A tqdm bar whose iteration sends console log lines through `tqdm.write`, so they print above the bars
    instead of through them."""

    def __iter__(self):
        with logging_redirect_tqdm(tqdm_class=Bar):
            yield from super().__iter__()


def show_running(bar: Iterable, batch: int, meter: SegmentationMeter) -> None:
    """On a shown bar, after batch `batch` (from 1), every `POSTFIX_EVERY` batches and at the last one: the
    epoch's running loss and Dice so far. No bar (off a terminal): nothing, not even a sync."""
    if not isinstance(bar, Bar) or (batch % POSTFIX_EVERY and batch != bar.total):
        return
    m = meter.compute()
    bar.set_postfix({"loss": f"{m['loss']:.4f}", "dice": f"{m['dice']:.4f}"})


def show_epoch(bar: Iterable, row: dict[str, float]) -> None:
    """On a shown epochs bar: the last epoch's val loss and Dice (already on the host)."""
    if isinstance(bar, Bar):
        bar.set_postfix({"val loss": f"{row['val/loss']:.4f}", "val dice": f"{row['val/dice']:.4f}"})
