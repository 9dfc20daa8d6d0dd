"""Progress bars that stay quiet when output is not a terminal (logs, CI, sweeps)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], enabled: str = "auto", **kwargs) -> Iterable[T]:
    """`items` wrapped in a tqdm bar when enabled (`trainer.progress`: auto, only when stderr is a terminal |
    true | false)."""
    enabled = str(enabled).lower()
    show = sys.stderr.isatty() if enabled == "auto" else enabled == "true"
    return tqdm(items, leave=False, dynamic_ncols=True, **kwargs) if show else items
