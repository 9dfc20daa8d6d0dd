"""The registries (seg/registry.py), the schema and conf/ agree: a new option is one registered schema class plus one
YAML file, and nothing else names it."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from seg import schema
from seg.registry import option_args

CONF = Path(__file__).resolve().parents[1] / "conf"
REGISTRIES = {registry.group: registry for registry in schema.OPTION_GROUPS}
# what each group's builder takes before the option's own keys (seg/build.py, seg/data/transforms.py)
LEADING = {"model": 0, "loss": 0, "augmentation": 1, "optimizer": 1, "scheduler": 3}


def test_every_option_group_has_a_registry() -> None:
    assert set(REGISTRIES) == set(LEADING)
    assert all(schema.GROUPS[group] == registry.schemas() for group, registry in REGISTRIES.items())


@pytest.mark.parametrize("group", sorted(LEADING))
def test_registry_schema_and_conf_name_the_same_options(group: str) -> None:
    registry = REGISTRIES[group]
    assert sorted(registry) == sorted(p.stem for p in (CONF / group).glob("*.yaml")), "one YAML file per option"
    for name in registry:
        defaults = yaml.safe_load((CONF / group / f"{name}.yaml").read_text())["defaults"]
        assert f"base_{name}" in defaults, f"conf/{group}/{name}.yaml must extend base_{name}"
        name_field = next(f for f in dataclasses.fields(registry[name].schema) if f.name == "name")
        check, allowed = name_field.metadata["check"]
        assert check(name) and allowed == name, f"{group}.name of {name} allows only {name}"


@pytest.mark.parametrize("group", sorted(LEADING))
def test_every_builder_takes_exactly_its_options_keys(group: str) -> None:
    registry = REGISTRIES[group]
    for name in registry:
        builder = registry.builder(name)
        keys = option_args(registry[name].schema())
        leading = [object()] * LEADING[group]
        inspect.signature(builder).bind(*leading, **keys)  # TypeError when a key has no parameter
        params = inspect.signature(builder).parameters.values()
        required = {p.name for p in params if p.default is p.empty and p.kind is p.KEYWORD_ONLY}
        assert required <= set(keys), f"{group}={name}: its builder needs {required - set(keys)}"


def test_an_unknown_option_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown loss 'dcie'; available: bce, bce_dice, bce_tversky, dice, focal"):
        schema.LOSSES.builder("dcie")
