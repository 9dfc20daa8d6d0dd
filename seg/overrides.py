"""Hydra command-line overrides as seg reads them: the key an override sets, said once for every reader (sweep
summaries and names, a study's merged commands, a resume's check, an evaluation's setting sources)."""

from __future__ import annotations


def override_key(override: str, *, package: bool = True) -> str:
    """The key of a Hydra override: `+trainer.epochs=5` -> `trainer.epochs`, `~logger` -> `logger` (the text before
    the first `=`, a leading + or ~ dropped); `model@net=unet` -> `model@net`, or with package=False `model` (the
    config group, its `@package` dropped)."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key if package else key.split("@", 1)[0]


def override_values(overrides: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`key=value` overrides as {key: value}, keyed by :func:`override_key` (flags without `=` left out)."""
    return {override_key(o): o.split("=", 1)[1] for o in overrides if "=" in o}
