"""Test-only pieces that a CLI run can load by `_target_` (with tests/ on PYTHONPATH)."""

from __future__ import annotations

import torch

from seg.losses import BCELoss


class NaNAfterLoss(BCELoss):
    """BCE that returns NaN from the `after`-th training call on (eval calls are not counted)."""

    def __init__(self, after: int):
        super().__init__()
        self.after = after
        self.calls = 0

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = super().forward(logits, target)
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls >= self.after:
                return loss * float("nan")
        return loss
