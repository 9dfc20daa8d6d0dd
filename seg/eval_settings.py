"""Where each setting of an evaluation comes from: this command's line, the checkpoint, or seg.evaluate's default.

seg.evaluate scores a checkpoint with the checkpoint's own settings unless a key is given; this module says, for
each setting that decides the numbers, which of the three it is, and warns when the checkpoint's debug limits
(a `debug=smoke` run's `data.limit`) are inherited, so a score over 16 images never passes for a whole split.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from seg.overrides import override_key
from seg.schema import EvaluateConfig, TrainConfig

FROM_CHECKPOINT = ("data.root", "data.image_size", "data.uncertain", "data.limit", "data.batch_size", "threshold",
                   "logger")  # fmt: skip
"""Settings that are the checkpoint's unless this command sets them."""
OWN = ("split", "tta", "data.num_workers", "device")
"""Settings of seg.evaluate itself: its default unless this command sets them."""


def _get(node: Any, key: str) -> Any:
    for part in key.split("."):
        node = getattr(node, part)
    return node


def setting_sources(cfg: EvaluateConfig, run_cfg: TrainConfig, given: Iterable[str]) -> list[tuple[str, Any, str]]:
    """(key, value used, where it came from) for each setting; `run_cfg`: the checkpoint's config with this
    command's settings applied (seg.evaluate.effective_config); `given`: this command's overrides."""
    given = {override_key(g) for g in given}
    rows = []
    for key in FROM_CHECKPOINT:
        used = run_cfg.logger.name if key == "logger" else _get(run_cfg, key)  # run_cfg: the settings used
        rows.append((key, used, "command line" if _get(cfg, key) is not None else "checkpoint"))
    rows += [(key, _get(cfg, key), "command line" if key in given else "default") for key in OWN]
    return rows


def describe_sources(rows: list[tuple[str, Any, str]]) -> str:
    """The settings as one markdown line: `data.image_size 64 (checkpoint), split test (default), ...`."""
    return ", ".join(f"{key} {value} ({source})" for key, value, source in rows)


def inherited_limits(cfg: EvaluateConfig, trained: TrainConfig) -> list[str]:
    """A warning per debug limit of the checkpoint this evaluation inherits (today: `data.limit`)."""
    limit = getattr(trained.data, "limit", None)
    if cfg.data.limit is None and limit:
        return [f"data.limit={limit} comes from the checkpoint (a debug run): at most {limit} images of the split are "
                f"scored; give data.limit=<n> to score more"]  # fmt: skip
    return []
