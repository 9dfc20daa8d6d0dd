"""Build-time checks that keep bad samples out of the datasets, and the single report about them.

Cheap checks run on every build, for any `seg.data.layout.Layout`: the image and mask (trimap) exist and are
not empty (stat), and, when no cache is used, their headers open with PIL and give the same size. Building the
cache decodes every file and so also catches corrupt pixel data (and mask values outside a folder dataset's map);
without a cache that last case is handled by the dataset itself at load time (it substitutes another sample
and warns).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from seg.data.images import BadImageError, header_size
from seg.errors import ConfigError, SegError

if TYPE_CHECKING:
    from seg.data.layout import Layout

__all__ = ["BAD_SAMPLE_POLICIES", "BadSample", "BadSamplesError", "check_on_bad_sample", "stat_check",
           "header_check", "report_bad_samples"]

BAD_SAMPLE_POLICIES = ("skip", "raise")


class BadSamplesError(SegError, ValueError):
    """Raised with data.on_bad_sample=raise; the message lists every bad file and why."""


@dataclass(frozen=True)
class BadSample:
    """One sample (or file) left out: its name, the split it was listed in ("" if none yet), and why."""

    name: str
    split: str
    reason: str

    def __str__(self) -> str:
        return f"{self.split + '/' if self.split else ''}{self.name}: {self.reason}"


def check_on_bad_sample(on_bad_sample: str) -> str:
    if on_bad_sample not in BAD_SAMPLE_POLICIES:
        raise ConfigError(
            f"data.on_bad_sample={on_bad_sample!r} is not one of {', '.join(BAD_SAMPLE_POLICIES)}"
        )
    return on_bad_sample


def _stat_problem(path: Path, what: str) -> str | None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"{what} missing ({path})"
    except OSError as e:
        return f"{what} unreadable ({path}: {e})"
    return f"{what} is an empty file ({path})" if size == 0 else None


def stat_check(layout: Layout, names: list[str], split: str) -> tuple[list[str], list[BadSample]]:
    """Split `names` into (present, bad): image or mask missing or zero bytes."""
    good, bad = [], []
    for name in names:
        problem = (_stat_problem(layout.image_path(name), "image")
                   or _stat_problem(layout.mask_path(name), layout.mask_word))
        if problem:
            bad.append(BadSample(name, split, problem))
        else:
            good.append(name)
    return good, bad


def header_check(layout: Layout, names: list[str], split: str) -> tuple[list[str], list[BadSample]]:
    """Split `names` into (good, bad) by opening headers only: not an image, or image/mask size differ."""
    good, bad = [], []
    for name in names:
        try:
            image_size = header_size(layout.image_path(name))
            mask_size = header_size(layout.mask_path(name))
        except BadImageError as e:
            bad.append(BadSample(name, split, str(e)))
            continue
        if image_size != mask_size:
            bad.append(BadSample(name, split, f"image size {image_size} != {layout.mask_word} size {mask_size}"))
        else:
            good.append(name)
    return good, bad


def report_bad_samples(bad: list[BadSample], on_bad_sample: str, root: Path) -> None:
    """One warning listing every bad sample (skip), or a BadSamplesError listing them (raise)."""
    if not bad:
        return
    listing = "\n  ".join(str(b) for b in bad)
    if on_bad_sample == "raise":
        raise BadSamplesError(
            f"{len(bad)} bad sample(s) in {root} (data.on_bad_sample=skip leaves them out):\n  {listing}"
        )
    warnings.warn(f"Skipping {len(bad)} bad sample(s) in {root}:\n  {listing}", UserWarning, stacklevel=3)
