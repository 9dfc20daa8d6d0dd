"""Weights & Biases tracking that never blocks training.

One W&B run per job: a training run (job_type train) or an evaluation (job_type eval, `track_evaluation`; a
study's report run: seg/study/wandb_runs.py). Its project, group, name and tags are plain values of the logger
settings, decided at the entry (seg/wandb_names.py). Offline by default (no network, no login prompt); any W&B
failure warns once and the command goes on with its local files.
"""

from __future__ import annotations

import html
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from seg.engine.evaluation import PER_IMAGE_COLUMNS, Evaluation
from seg.schema import LoggerConfig, TrainConfig

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


# --- the tracker -------------------------------------------------------------------------------------------
class WandbTracker:
    """Logs metrics, images, tables and artifacts to one W&B run; a no-op once W&B has failed."""

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
        name: str | None = None,
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
                name=name,
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
            if job_type == "train":
                self.run.define_metric("epoch")
                self.run.define_metric("*", step_metric="epoch")
                self.run.define_metric("val/dice", step_metric="epoch", summary="max")
        except Exception as e:  # noqa: BLE001 -- any W&B failure must leave training running
            self._fail(e)

    @classmethod
    def for_logger(
        cls, lg: LoggerConfig, run_dir: Path, config: dict[str, Any], *, job_type: str | None = None,
        name: str | None = None, run_id: str | None = None,
    ) -> WandbTracker:  # fmt: skip
        """The run `lg` (a run's logger settings) asks for, in `run_dir`; `off()` for `logger=none`.
        `job_type` and `name` default to the logger's."""
        if lg.name != "wandb":
            return cls.off()
        return cls(
            run_dir, config, lg.project, lg.entity, lg.group, job_type or lg.job_type, list(lg.tags), lg.mode,
            run_id, lg.init_timeout, name or lg.run_name,
        )  # fmt: skip

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
            "W&B is off for this run (%s: %s); the local files keep everything.", type(error).__name__, error
        )
        self.run = None

    def _try(self, write) -> None:
        """Call `write(wandb module, run)`; any W&B error turns the tracker off with one warning."""
        if self.run is None:
            return
        try:
            import wandb

            write(wandb, self.run)
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def log(self, metrics: dict[str, Any]) -> None:
        self._try(lambda wandb, run: run.log(metrics))

    def log_summary(self, metrics: dict[str, Any]) -> None:
        """Values for the run's summary (e.g. the test metrics of best.pt)."""
        self._try(lambda wandb, run: run.summary.update(metrics))

    def log_evaluation(self, prefix: str, result: Evaluation, extra: dict[str, float] | None = None) -> None:
        """`result`'s metrics as `<prefix>/<metric>` in the summary, and its per-image table (image, Dice, TP,
        FP, FN) as `<prefix>/per_image`."""
        self.log_summary({f"{prefix}/{k}": v for k, v in {**result.metrics(), **(extra or {})}.items()})
        rows = [[name, float(d), int(tp), int(fp), int(fn)]
                for name, (d, tp, fp, fn) in zip(result.names, result.table)]  # fmt: skip
        self.log_table(f"{prefix}/per_image", PER_IMAGE_COLUMNS, rows)

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        self._try(lambda wandb, run: run.log({key: wandb.Table(columns=columns, data=rows)}))

    def log_text(self, key: str, text: str) -> None:
        """Plain text (a report's markdown), shown as written."""
        page = f"<pre style='white-space: pre-wrap'>{html.escape(text)}</pre>"
        self._try(lambda wandb, run: run.log({key: wandb.Html(page)}))

    def log_image(self, key: str, path: Path) -> None:
        """A PNG already written (examples.png, a report's plot)."""
        self._try(lambda wandb, run: run.log({key: wandb.Image(str(path))}))

    def log_artifact(
        self, name: str, kind: str, paths: Sequence[Path], metadata: dict[str, Any] | None = None,
        aliases: Sequence[str] = (),
    ) -> None:  # fmt: skip
        """Files as one W&B artifact `name` of type `kind` (a checkpoint: `model`; a report: `report`)."""

        def write(wandb, run) -> None:
            artifact = wandb.Artifact(_artifact_name(name), type=kind, metadata=metadata or {})
            for path in paths:
                artifact.add_file(str(path))
            run.log_artifact(artifact, aliases=["latest", *aliases])

        self._try(write)

    def log_checkpoint(self, path: Path, epoch: int, metrics: dict[str, float]) -> None:
        """A checkpoint as artifact `model-<run id>` (type model, aliases best and epoch<N>), W&B's convention."""
        metadata = {"epoch": epoch, **metrics}
        self.log_artifact(f"model-{self.run_id}", "model", [path], metadata, ["best", f"epoch{epoch}"])

    def log_masks(
        self, epoch: int, images: torch.Tensor, probs: torch.Tensor, targets: torch.Tensor, threshold: float
    ) -> None:
        """A panel of val images with predicted and true masks.

        images: (N, 3, H, W) in [0, 1]; probs: (N, 1, H, W) in [0, 1]; targets: (N, 1, H, W) in {0, 1, 255}.
        """

        def write(wandb, run) -> None:
            class_labels = {0: "background", 1: "pet", 255: "ignore"}
            panel = [
                wandb.Image(
                    (img.permute(1, 2, 0).numpy() * 255).astype("uint8"),
                    masks={
                        "prediction": {"mask_data": (p[0] > threshold).numpy().astype("uint8"),
                                       "class_labels": class_labels},
                        "ground_truth": {"mask_data": t[0].numpy().astype("uint8"), "class_labels": class_labels},
                    },
                )
                for img, p, t in zip(images, probs, targets)
            ]  # fmt: skip
            run.log({"epoch": epoch, "val/examples": panel})

        self._try(write)

    @torch.no_grad()
    def log_examples(
        self, epoch: int, model: torch.nn.Module, dataset, n: int, device: torch.device, threshold: float
    ) -> None:
        """Predict the first `n` items of `dataset` and log them as a mask panel."""
        from seg.data import denormalize

        model.eval()
        items = [dataset[i] for i in range(min(n, len(dataset)))]
        images = torch.stack([img for img, _ in items])
        probs = torch.sigmoid(model(images.to(device)).float()).cpu()
        self.log_masks(epoch, denormalize(images), probs, torch.stack([m for _, m in items]), threshold)

    def finish(self, exit_code: int = 0) -> None:
        self._try(lambda wandb, run: run.finish(exit_code=exit_code))
        self.run = None


def track_evaluation(
    trained: TrainConfig, out_dir: Path, split: str, config: dict[str, Any], result: Evaluation,
    extra: dict[str, float], examples: Path,
) -> str | None:  # fmt: skip
    """An evaluation as a W&B run (job_type eval) of the group its training run was tracked under, named
    `<training run name>-eval-<split>`: metrics as `<split>/...` in the summary, the per-image table, and
    examples.png. Follows the checkpoint's logger settings (none: no run). Returns the W&B run id."""
    lg = trained.logger
    tracker = WandbTracker.for_logger(
        lg, out_dir, config, job_type="eval", name=f"{lg.run_name or trained.name}-eval-{split}"
    )
    tracker.log_evaluation(split, result, extra)
    if examples.is_file():
        tracker.log_image(f"{split}/examples", examples)
    run_id = tracker.run_id
    tracker.finish()
    return run_id


def _artifact_name(name: str) -> str:
    """W&B artifact names allow letters, digits, dashes, underscores and dots."""
    return re.sub(r"[^\w.-]+", "-", name)
