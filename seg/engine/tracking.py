"""Weights & Biases tracking that never blocks training.

One W&B run per job. Offline by default (no network, no login prompt); any W&B failure warns once
and training goes on with the local history (metrics.csv, curves.png).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

SECRET_MARKERS = ("api_key", "apikey", "password", "secret", "token")


def redact_secrets(config: Any) -> Any:
    """A copy of a nested config dict with values of secret-looking keys replaced by '***'."""
    if isinstance(config, dict):
        return {
            k: "***" if any(m in str(k).lower() for m in SECRET_MARKERS) else redact_secrets(v)
            for k, v in config.items()
        }
    if isinstance(config, list):
        return [redact_secrets(v) for v in config]
    return config


class WandbTracker:
    """Logs per-epoch metrics and image panels to one W&B run; a no-op once W&B has failed."""

    def __init__(
        self,
        run_dir: Path,
        config: dict[str, Any],
        project: str,
        entity: str | None,
        group: str,
        job_type: str,
        tags: list[str],
        mode: str,
        run_id: str | None = None,
        init_timeout: float = 60.0,
    ):
        self.run = None
        mode = os.environ.get("WANDB_MODE", mode)
        try:
            import wandb

            self.run = wandb.init(
                project=project,
                entity=entity,
                group=group,
                job_type=job_type,
                tags=list(tags),
                config=redact_secrets(config),
                dir=str(run_dir),
                mode=mode,
                id=run_id,
                resume="allow" if run_id else None,
                reinit="finish_previous",
                settings=wandb.Settings(
                    silent=True, console="off", x_disable_stats=True, init_timeout=init_timeout
                ),
            )
            self.run.define_metric("epoch")
            self.run.define_metric("*", step_metric="epoch")
            self.run.define_metric("val/dice", step_metric="epoch", summary="max")
        except Exception as e:  # noqa: BLE001 -- any W&B failure must leave training running
            self._fail(e)

    @classmethod
    def off(cls) -> WandbTracker:
        """A tracker that logs nothing (`logger=none`)."""
        tracker = cls.__new__(cls)
        tracker.run = None
        return tracker

    @property
    def active(self) -> bool:
        return self.run is not None

    @property
    def run_id(self) -> str | None:
        return None if self.run is None else self.run.id

    def _fail(self, error: Exception) -> None:
        log.warning(
            "W&B is off for this run (%s: %s); metrics.csv keeps the history.", type(error).__name__, error
        )
        self.run = None

    def log(self, metrics: dict[str, float]) -> None:
        if self.run is None:
            return
        try:
            self.run.log(metrics)
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def log_masks(
        self, epoch: int, images: torch.Tensor, probs: torch.Tensor, targets: torch.Tensor, threshold: float
    ) -> None:
        """A panel of val images with predicted and true masks.

        images: (N, 3, H, W) in [0, 1]; probs: (N, 1, H, W) in [0, 1]; targets: (N, 1, H, W) in {0, 1, 255}.
        """
        if self.run is None:
            return
        try:
            import wandb

            class_labels = {0: "background", 1: "pet", 255: "ignore"}
            panel = [
                wandb.Image(
                    (img.permute(1, 2, 0).numpy() * 255).astype("uint8"),
                    masks={
                        "prediction": {
                            "mask_data": (p[0] > threshold).numpy().astype("uint8"),
                            "class_labels": class_labels,
                        },
                        "ground_truth": {
                            "mask_data": t[0].numpy().astype("uint8"),
                            "class_labels": class_labels,
                        },
                    },
                )
                for img, p, t in zip(images, probs, targets)
            ]
            self.run.log({"epoch": epoch, "val/examples": panel})
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    @torch.no_grad()
    def log_examples(
        self, epoch: int, model: torch.nn.Module, dataset, n: int, device: torch.device, threshold: float
    ) -> None:
        """Predict the first `n` items of `dataset` and log them as a mask panel."""
        from seg.data import denormalize
        from seg.inference import predict_probs

        model.eval()
        items = [dataset[i] for i in range(min(n, len(dataset)))]
        images = torch.stack([img for img, _ in items])
        probs = predict_probs(model, images.to(device)).cpu()
        self.log_masks(epoch, denormalize(images), probs, torch.stack([m for _, m in items]), threshold)

    def log_summary(self, metrics: dict[str, float]) -> None:
        """Values for the run's summary (e.g. the test metrics of best.pt)."""
        if self.run is None:
            return
        try:
            self.run.summary.update(metrics)
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def finish(self, exit_code: int = 0) -> None:
        if self.run is None:
            return
        try:
            self.run.finish(exit_code=exit_code)
        except Exception as e:  # noqa: BLE001
            self._fail(e)
        self.run = None
