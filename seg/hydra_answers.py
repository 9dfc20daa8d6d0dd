"""How seg answers Hydra while it composes a config (installed by seg.config.register, once per process).

- An override of a key the schema does not have (`trainer.epoch=3`) gets seg's one line with the closest key,
  not Hydra's advice to add it with `+`; a key under a node that is null here (`pruning.pruner=none` without a
  search) names the config that sets the node, instead of Hydra's AssertionError.
- The schema's `<group>/base_*` nodes are hidden from `--help`, tab completion and Hydra's lists of options, and
  choosing one (`model=base_unet`) is refused.

These wrap three methods of Hydra 1.3's internals (ConfigLoaderImpl._apply_overrides_to_config and
load_configuration, ConfigRepository.get_group_options) and its error printer (run_and_report).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

from seg import schema
from seg.config import unknown_key_message
from seg.errors import ConfigError, exit_on_user_error
from seg.overrides import override_key


class UnknownOverrideKey(ConfigError, ConfigCompositionException):
    """An override of a key the schema does not have (`trainer.epoch=3`), found while Hydra composes."""


def answer_composing_errors() -> None:
    """Make Hydra answer an override of an unknown key (`trainer.epoch=3`) with seg's line, `error: unknown config
    key trainer.epoch; did you mean trainer.epochs? ...` (exit 2, as for `+trainer.epoch=3`), not with Hydra's
    "To append to your config use +trainer.epoch=3", advice that only leads to that same error. In-process (a
    notebook's compose) it is an UnknownOverrideKey: a ConfigError and Hydra's ConfigCompositionException."""
    from hydra._internal import utils
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    apply = ConfigLoaderImpl._apply_overrides_to_config
    if getattr(apply, "seg_explained", False):
        return

    def explained(overrides: list, cfg: DictConfig) -> None:
        for override in overrides:
            plain = not (override.is_add() or override.is_force_add() or override.is_delete())
            unknown = _missing_key(cfg, override.key_or_group) if plain and override.package is None else None
            if unknown is not None:
                raise UnknownOverrideKey(unknown_key_message(*unknown))
        apply(overrides, cfg)

    report = utils.run_and_report

    def reported(func: Any) -> Any:  # Hydra prints a SegError raised while composing as `error: <line>`, exit 2
        def checked() -> Any:
            with exit_on_user_error():
                return func()

        return report(checked)

    explained.seg_explained = True  # type: ignore[attr-defined]
    ConfigLoaderImpl._apply_overrides_to_config = staticmethod(explained)
    utils.run_and_report = reported
    _hide_schema_nodes()


def _hide_schema_nodes() -> None:
    """The schema's `<group>/base_*` nodes are what the YAML options extend, not options: `--help`, tab completion
    and Hydra's lists of options leave them out, and choosing one (`model=base_unet`) is refused in one line."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.config_repository import ConfigRepository

    options, load = ConfigRepository.get_group_options, ConfigLoaderImpl.load_configuration

    def shown(self: Any, group_name: str, *args: Any, **kwargs: Any) -> list[str]:
        return [o for o in options(self, group_name, *args, **kwargs) if not o.startswith("base_")]

    def refusing(self: Any, config_name: Any, overrides: list[str], *args: Any, **kwargs: Any) -> DictConfig:
        for override in overrides:
            group, value = override_key(override), override.partition("=")[2]
            if group in schema.GROUPS and value.startswith("base_"):
                raise UnknownOverrideKey(f"{override}: base_* is the schema an option extends, not an option; choose "
                                         f"one of the options `--help` lists for {group}")  # fmt: skip
        return load(self, config_name, overrides, *args, **kwargs)

    ConfigRepository.get_group_options = shown
    ConfigLoaderImpl.load_configuration = refusing


def _missing_key(cfg: DictConfig, key: str) -> tuple[str, list[str]] | None:
    """(the first missing part of dotted `key`, the keys allowed there) when a schema node lacks it, else None."""
    node, parts = cfg, key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, DictConfig):
            return None
        object_type = node._metadata.object_type
        if part not in node:
            if not dataclasses.is_dataclass(object_type):
                return None
            return ".".join(parts[: i + 1]), [f.name for f in dataclasses.fields(object_type)]
        if OmegaConf.is_missing(node, part) or OmegaConf.is_interpolation(node, part):
            return None
        if node[part] is None and i + 1 < len(parts):  # Hydra would fail with an AssertionError traceback
            where = ".".join(parts[: i + 1])
            raise UnknownOverrideKey(f"cannot set {key}: {where} is null in this config; choose a config that sets "
                                     f"it first ({NULL_NODES.get(where, 'an experiment file')})")  # fmt: skip
        node = node[part]
    return None


NULL_NODES = {"ablation": "an experiment with an ablation block, e.g. experiment=ablation_scheduler",
              "study": "study=ablations, or an ablation experiment", "pruning": "hparams_search=lr_optuna"}  # fmt: skip
"""Nodes that are null unless a config file sets them, and the configs that do."""
