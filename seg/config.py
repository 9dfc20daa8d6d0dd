"""From a composed Hydra config (or a stored one) to checked, typed dataclasses of `seg.schema`.

`typed_config` is the one gate every entry point passes before any work: unknown keys (`+typo=...` included)
are refused, every value is checked against its schema field, and cross-key rules (an image size the model
can take, ImageNet weights at their width) hold. Errors are one line naming the key and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from seg import schema
from seg.errors import ConfigError
from seg.plain_yaml import load_bounded

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
"""The config tree, as an absolute path: Hydra finds it from `python -m seg.train` and the installed `seg-train`
alike (a relative config_path under a console script would be looked up as a Python package)."""
HYDRA_VERSION_BASE = "1.3"


def register() -> None:
    """Register the schema in Hydra's ConfigStore and the resolvers the config tree uses (idempotent)."""
    store = ConfigStore.instance()
    for group, options in schema.GROUPS.items():
        for name, node in options.items():
            store.store(group=group, name=f"base_{name}", node=node)
    for name, node in schema.ROOTS.items():
        store.store(name=f"base_{name}", node=node)
    from seg.rundir import register_resolvers

    register_resolvers()
    from seg.hydra_answers import answer_composing_errors

    answer_composing_errors()


def compose(config_name: str = "train", overrides: Sequence[str] = ()) -> DictConfig:
    """The config `python -m seg.<config_name> <overrides>` composes (conf/ and the schema), not yet checked: pass it
    to `typed_config`. Works anywhere, a notebook included (the schema is registered here first)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register()
    with initialize_config_dir(config_dir=CONF_DIR, version_base=HYDRA_VERSION_BASE):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def typed_config(cfg: DictConfig) -> Any:
    """The checked dataclass tree of a composed config (TrainConfig, EvaluateConfig or PredictConfig).

    Raises ConfigError for an unknown key, a missing or invalid value, or a broken cross-key rule.
    """
    unknown = _unknown_keys(cfg, "")
    if unknown:
        raise ConfigError(unknown_key_message(*unknown[0]))
    try:
        typed = OmegaConf.to_object(cfg)
    except MissingMandatoryValue as e:
        raise ConfigError(f"missing config value: {e.full_key} is required, e.g. {e.full_key}=...") from e
    except OmegaConfBaseException as e:
        raise ConfigError(f"invalid config: {str(e).splitlines()[0]}") from e
    check_values(typed)
    return typed


def unknown_key_message(key: str, fields: list[str]) -> str:
    """`unknown config key <key>; did you mean <closest>? (allowed there: ...)`."""
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], fields, n=1)
    hint = f"; did you mean {key.rsplit('.', 1)[0] + '.' if '.' in key else ''}{close[0]}?" if close else ""
    return f"unknown config key {key}{hint} (allowed there: {', '.join(fields)})"


def require(value: Any, key: str, example: str) -> None:
    """ConfigError when the required `key` was not given."""
    if value is None:
        raise ConfigError(f"missing config value: {key} is required, e.g. {example}")


def typed_job_config(cfg: DictConfig) -> Any:
    """The checked config of a sweep job composed by a sweeper (a config that still holds its `hydra` node), with
    `${hydra:...}` resolved against that job's own hydra node, as the launcher will run it."""
    from hydra.core.hydra_config import HydraConfig

    job = copy.deepcopy(cfg)
    hydra_config, previous = HydraConfig.instance(), HydraConfig.instance().cfg
    hydra_config.set_config(job)
    try:
        with read_write(job), open_dict(job):
            job.pop("hydra", None)
        return typed_config(job)
    finally:
        hydra_config.cfg = previous


def _unknown_keys(node: Any, prefix: str) -> list[tuple[str, list[str]]]:
    """(dotted key, allowed keys) of every key of `node` that its schema dataclass does not have."""
    if not isinstance(node, DictConfig):
        return []
    object_type = node._metadata.object_type
    allowed = [f.name for f in dataclasses.fields(object_type)] if dataclasses.is_dataclass(object_type) else None
    found = []
    for key in list(node.keys()):  # noqa: SIM118 -- a DictConfig's keys, without resolving values
        path = f"{prefix}{key}"
        if allowed is not None and key not in allowed:
            found.append((path, allowed))
        elif not OmegaConf.is_missing(node, key) and not OmegaConf.is_interpolation(node, key):
            found += _unknown_keys(node[key], f"{path}.")
    return found


def check_values(root: Any) -> None:
    """Check every field against its schema `check`, then the rules across keys; ConfigError on the first."""
    for key, value, f in walk(root):
        check = f.metadata.get("check")
        if check is not None and value is not None and not check[0](value):
            raise ConfigError(f"invalid config: {key}={value!r}; allowed: {check[1]}")
    if isinstance(root, schema.TrainConfig):
        _check_model_fits(root)
        from seg.data import check_data_keys  # torch, as for the model check

        check_data_keys(root.data)
        if root.study is not None:
            _check_study(root.study, root.trainer)


def _check_study(study: schema.StudyConfig, trainer: schema.TrainerConfig) -> None:
    """The study keys that cannot work together."""
    if study.checkpoint == "ema" and trainer.ema_decay is None:
        raise ConfigError("invalid config: study.checkpoint=ema needs trainer.ema_decay (e.g. 0.99): runs "
                          "without it have no ema.pt; or judge study.checkpoint=best|last")  # fmt: skip
    if study.fold_mode == "every" and study.folds is None:
        raise ConfigError("invalid config: study.fold_mode=every needs study.folds=K (the number of folds), e.g. "
                          "study.folds=5")  # fmt: skip
    if study.fold_mode == "every" and study.vary:
        raise ConfigError(f"invalid config: study.vary={list(study.vary)} varies one source at a fixed split; it "
                          "cannot be combined with study.fold_mode=every (use study.fold_mode=per_seed, or "
                          "study.vary=[])")  # fmt: skip


def _check_model_fits(cfg: schema.TrainConfig) -> None:
    from seg.models import MODELS, check_model_args  # torch: only once the config is otherwise valid

    min_size = MODELS.builder(cfg.model.name).min_input_size
    if cfg.data.image_size < min_size:
        raise ConfigError(
            f"invalid config: data.image_size={cfg.data.image_size} is too small for model={cfg.model.name}; "
            f"allowed: an integer >= {min_size}"
        )
    check_model_args(cfg.model.name, {k: v for k, v in dataclasses.asdict(cfg.model).items() if k != "name"},
                     cfg.data.image_size)  # fmt: skip


def walk(node: Any, prefix: str = "") -> list[tuple[str, Any, dataclasses.Field]]:
    """(dotted key, value, schema field) of every leaf of a typed config, depth first."""
    leaves = []
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            leaves += walk(value, f"{prefix}{f.name}.")
        else:
            leaves.append((f"{prefix}{f.name}", value, f))
    return leaves


def result_items(cfg: Any) -> dict[str, Any]:
    """{dotted key: value} of the keys that can change a run's results (the schema's non-neutral fields)."""
    return {key: value for key, value, f in walk(cfg)
            if not _neutral(cfg, key, f) and not (f.metadata.get("keyed_once_set") and value == f.default)}


def _neutral(cfg: Any, key: str, f: dataclasses.Field) -> bool:
    if f.metadata.get("neutral"):
        return True
    head = key.split(".", 1)[0]  # a whole node can be neutral (pruning, ablation)
    outer = next((g for g in dataclasses.fields(cfg) if g.name == head), None)
    return head != key and outer is not None and bool(outer.metadata.get("neutral"))


def debug_limits(cfg: schema.TrainConfig) -> dict[str, int]:
    """The limits that make a run a debug run (`debug=smoke`): {key: value} of those set, {} for a real run."""
    limits = {
        "trainer.limit_train_batches": cfg.trainer.limit_train_batches,
        "trainer.limit_val_batches": cfg.trainer.limit_val_batches,
        "data.limit": getattr(cfg.data, "limit", None),
    }
    return {k: v for k, v in limits.items() if v}


def to_yaml(cfg: Any) -> str:
    """A typed config as plain YAML (resolved, no interpolation): what a run stores."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def train_config_from_yaml(text: str, source: str) -> schema.TrainConfig:
    """A TrainConfig from stored YAML text (a checkpoint's), treated as untrusted.

    Plain YAML only: no interpolation is resolved (a `${oc.env:...}` is refused), no `_target_` exists, each
    group node must match one of its schema options by name, and every value is checked as for a new run.
    """
    try:
        plain = load_bounded(text, source)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: its config is not valid YAML") from e
    if not isinstance(plain, dict):
        raise ConfigError(f"{source}: its config is not a mapping")
    _refuse_interpolations(plain, source)
    nodes = {}
    for group, options in schema.GROUPS.items():
        value = plain.pop(group, None)
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: its config has no '{group}' section")
        matching = [c for c in options.values() if len(options) == 1 or _default_name(c) == value.get("name")]
        if not matching:
            raise ConfigError(f"{source}: unknown {group} {value.get('name')!r} (known: {', '.join(options)})")
        nodes[group] = _merge(matching[0], value, source)
    root = _merge(schema.TrainConfig, plain, source)
    for group, node in nodes.items():
        root[group] = node
    return typed_config(root)


def _default_name(node: type) -> str | None:
    return next((f.default for f in dataclasses.fields(node) if f.name == "name"), None)


def _merge(node: type, values: dict, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(OmegaConf.structured(node), values)
    except OmegaConfBaseException as e:
        raise ConfigError(f"{source}: its config does not fit seg's schema: {str(e).splitlines()[0]}") from e


def _refuse_interpolations(value: Any, source: str) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _refuse_interpolations(v, source)
    elif isinstance(value, list):
        for v in value:
            _refuse_interpolations(v, source)
    elif isinstance(value, str) and "${" in value:
        raise ConfigError(f"{source}: its config holds an interpolation ({value!r}); refusing to resolve it")
