"""One registry per config group with options: option name -> its schema dataclass and the code that builds it.

An option (a model, a loss, an optimizer, a schedule, an augmentation preset) is one schema dataclass in
seg/schema.py, registered with its builder, plus one YAML file `conf/<group>/<name>.yaml` (`defaults: [base_<name>]`):

    @MODELS.option("seg.models.unet:UNet")
    @dataclass
    class UNetConfig:
        name: str = option_name("unet")
        base_channels: int = knob(64, at_least(1))

The schema's GROUPS, the allowed values of each `name` and Hydra's `base_<name>` nodes come from the registries;
tests/test_registry.py proves that the registries, the schema and conf/ agree. A builder is named by
"module:attribute" and imported when first used, so the schema (and `--help`) stays free of torch.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class Option:
    """One option of a group: its name (the YAML file's name), schema dataclass and builder ("module:attribute")."""

    name: str
    schema: type
    builder_path: str

    @property
    def builder(self) -> Callable[..., Any]:
        return _import(self.builder_path)


@functools.cache
def _import(path: str) -> Callable[..., Any]:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


class Registry:
    """The options of one config group, in registration order. `build(node, *args)` calls the option's builder
    with `args` and the node's values other than its name."""

    def __init__(self, group: str, builds: str):
        self.group = group
        self.builds = builds  # what a builder returns, for the reader: "an nn.Module (N,3,H,W) -> (N,1,H,W) logits"
        self._options: dict[str, Option] = {}

    def option(self, builder: str) -> Callable[[T], T]:
        """Class decorator: register a schema dataclass (whose `name` default is the option's name) and its builder."""

        def register(schema: T) -> T:
            name = option_name_of(schema)
            if name in self._options:
                raise ValueError(f"{self.group} option {name!r} is registered twice")
            self._options[name] = Option(name, schema, builder)
            return schema

        return register

    def __contains__(self, name: object) -> bool:
        return name in self._options

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def __getitem__(self, name: str) -> Option:
        if name not in self._options:
            raise ValueError(f"unknown {self.group} {name!r}; available: {', '.join(sorted(self._options))}")
        return self._options[name]

    def schemas(self) -> dict[str, type]:
        """{option name: schema dataclass}: the schema's GROUPS entry of this group."""
        return {name: option.schema for name, option in self._options.items()}

    def builder(self, name: str) -> Callable[..., Any]:
        """The code that builds option `name` (ValueError listing the options for an unknown name)."""
        return self[name].builder

    def build(self, node: Any, *args: Any, **extra: Any) -> Any:
        """The object a checked config node describes: builder(*args, **option_args(node), **extra)."""
        return self.builder(node.name)(*args, **option_args(node), **extra)


def option_name_of(schema: type) -> str:
    """The default of a schema dataclass's `name` field: the option it is."""
    return next(f.default for f in dataclasses.fields(schema) if f.name == "name")


def option_args(node: Any) -> dict[str, Any]:
    """A group node's values other than its `name`, as plain keyword arguments of its builder."""
    return {k: v for k, v in dataclasses.asdict(node).items() if k != "name"}
