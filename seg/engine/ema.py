"""An exponential moving average (EMA) of a model's weights, `trainer.ema_decay`, updated after every optimizer step.

The average of the last ~1 / (1 - decay) steps' weights is a third candidate model next to best.pt (picked on the
val split) and last.pt: it needs no selection and smooths out the last steps' noise. The run saves it each epoch
as checkpoints/ema.pt (a checkpoint like best.pt, so seg.evaluate and seg.predict take it) and keeps it in last.pt
so a resumed run continues the same average.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

WARMUP = 10
"""The decay after n updates is min(decay, (1 + n) / (WARMUP + n)): the first steps' random weights fade fast."""


class WeightAverage:
    """EMA of `model`'s state_dict: floating tensors averaged, integer buffers (BatchNorm's counters) copied.

    BatchNorm's running mean and variance are averaged like the weights, so the average is a complete model.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.model, self.decay, self.updates = model, decay, 0
        self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (WARMUP + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the model's weights now (call once per optimizer step)."""
        self.updates += 1
        weight = 1.0 - self.current_decay()
        for key, value in self.model.state_dict().items():
            average = self.weights[key]
            if average.is_floating_point():
                average.lerp_(value.detach(), weight)
            else:
                average.copy_(value)

    def follow(self, optimizer: torch.optim.Optimizer) -> RemovableHandle:
        """Update after every `optimizer.step()` that happens (a step an fp16 GradScaler skips is not one)."""
        return optimizer.register_step_post_hook(lambda *_: self.update())

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (checkpoints load with weights_only=True)."""
        return {"weights": self.weights, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state["weights"].items():
            self.weights[key].copy_(value)
        self.updates = int(state["updates"])
