"""Hard Dice / IoU metrics for binary segmentation (Dice per image and pooled, pooled IoU), and summary statistics.

logits: (N, 1, H, W) float; target: (N, 1, H, W) float in {0, 1, IGNORE_INDEX}. The prediction is
sigmoid(logits) > threshold; pixels whose target is ``IGNORE_INDEX`` are excluded everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from seg.constants import IGNORE_INDEX

STATE_FIELDS: tuple[str, ...] = (
    "dice_sum",
    "n_images",
    "intersection",
    "pred",
    "gt",
    "union",
    "loss_sum",
    "loss_count",
)
"""Layout of :meth:`SegmentationMeter.state`: sums that can be added across processes."""


def confusion_counts(logits: Tensor, target: Tensor, threshold: float = 0.5) -> tuple[Tensor, Tensor, Tensor]:
    """Per-image (N,) int64 counts over valid pixels: |P ∩ G|, |P|, |G|."""
    valid = target != IGNORE_INDEX
    pred = (torch.sigmoid(logits.float()) > threshold) & valid
    gt = (target > 0.5) & valid
    dims = tuple(range(1, logits.dim()))
    return (pred & gt).sum(dims), pred.sum(dims), gt.sum(dims)


def _dice(intersection: Tensor, pred: Tensor, gt: Tensor) -> Tensor:
    """2|P∩G| / (|P| + |G|) as float32, 1 where both are empty (elementwise on counts)."""
    denom = (pred + gt).float()
    return torch.where(denom > 0, 2 * intersection.float() / denom.clamp_min(1), 1.0)


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    """float64, except on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


class SegmentationMeter:
    """Accumulates Dice, pooled Dice/IoU and the mean loss over batches, on the device.

    ``update`` adds to a device tensor of sums (layout ``STATE_FIELDS``) and never syncs with the host;
    ``state``/``load_state`` expose those sums so a trainer can ``all_reduce`` them across processes.
    The per-image values of ``keep_per_image=True`` stay local to this process.
    """

    def __init__(
        self, threshold: float = 0.5, device: torch.device | str = "cpu", keep_per_image: bool = False
    ) -> None:
        self.threshold = threshold
        self.device = torch.device(device)
        self.keep_per_image = keep_per_image
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self._sums = torch.zeros(len(STATE_FIELDS), dtype=_accumulator_dtype(self.device), device=self.device)
        self._per_image: list[Tensor] = []

    @torch.no_grad()
    def update(self, logits: Tensor, target: Tensor, loss: Tensor | None = None) -> None:
        """Add a batch: logits, target (N, 1, H, W); ``loss`` the batch-mean loss (0-dim), weighted by N."""
        intersection, pred, gt = (c.to(self.device) for c in confusion_counts(logits.detach(), target, self.threshold))
        dice = _dice(intersection, pred, gt)
        acc, n = self._sums, float(dice.numel())
        loss_sum = loss.detach().to(acc) * n if loss is not None else acc.new_zeros(())
        counts = (intersection, pred, gt, pred + gt - intersection)
        batch = [dice.sum().to(acc), acc.new_full((), n), *(c.sum().to(acc) for c in counts)]
        batch += [loss_sum, acc.new_full((), n if loss is not None else 0.0)]
        self._sums += torch.stack(batch)
        if self.keep_per_image:
            self._per_image.append(
                torch.stack(
                    [dice.double(), *(c.double() for c in (intersection, pred - intersection, gt - intersection))], 1
                )
            )

    def state(self) -> Tensor:
        """1-D float64 tensor of the sums (layout ``STATE_FIELDS``), on the meter's device (CPU for MPS)."""
        return self._sums.to("cpu" if self.device.type == "mps" else self.device, torch.float64).clone()

    def load_state(self, state: Tensor) -> None:
        """Replace the sums by ``state`` (e.g. after an ``all_reduce`` of :meth:`state`)."""
        self._sums = state.detach().to(self._sums).reshape(len(STATE_FIELDS)).clone()

    def compute(self) -> dict[str, float]:
        """``loss`` (sample-weighted mean; nan if no loss was given), ``dice`` (mean per-image Dice; nan
        if empty), ``dice_pooled`` and ``iou_pooled`` (from counts summed over all pixels; 1.0 when
        prediction and target are empty everywhere) and ``count`` (number of images)."""
        s = dict(zip(STATE_FIELDS, self.state().tolist(), strict=True))
        n, denom = s["n_images"], s["pred"] + s["gt"]
        return {
            "loss": s["loss_sum"] / s["loss_count"] if s["loss_count"] else float("nan"),
            "dice": s["dice_sum"] / n if n else float("nan"),
            "dice_pooled": 2 * s["intersection"] / denom if denom else 1.0,
            "iou_pooled": s["intersection"] / s["union"] if s["union"] else 1.0,
            "count": n,
        }

    def per_image(self) -> Tensor:
        """(M,) float64 CPU tensor of every per-image Dice since the last reset, in update order."""
        return self.per_image_table()[:, 0]

    def per_image_table(self) -> Tensor:
        """(M, 4) float64 CPU tensor, one row per image since the last reset in update order: Dice, TP, FP, FN
        (the pixel counts over the valid pixels)."""
        if not self.keep_per_image:
            raise RuntimeError("per-image results need SegmentationMeter(keep_per_image=True)")
        if not self._per_image:
            return torch.zeros((0, 4), dtype=torch.float64)
        return torch.cat(self._per_image).cpu()


def summary_stats(values: Sequence[float] | Tensor) -> dict[str, float]:
    """mean, median, std (population, ddof=0, numpy's default), min, max and count of ``values``.

    Empty input gives count 0 and nan for the rest.
    """
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().numpy()
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        nan = float("nan")
        return {"mean": nan, "median": nan, "std": nan, "min": nan, "max": nan, "count": 0}
    return {
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "std": float(a.std()),
        "min": float(a.min()),
        "max": float(a.max()),
        "count": int(a.size),
    }
