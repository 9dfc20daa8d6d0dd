"""Stored YAML (a checkpoint's config, a run's config.yaml) parsed as untrusted: bounded in size, in nesting and in
its size once aliases are expanded, so that an alias bomb (nested anchors that expand to billions of nodes) or a
self-referencing anchor is refused in one line instead of hanging every walk over the result."""

from __future__ import annotations

from typing import Any

import yaml

from seg.errors import ConfigError

MAX_CHARS = 1_000_000  # a config seg writes is a few KB
MAX_NODES = 100_000  # scalars, lists and mappings, with every alias expanded


def load_bounded(text: str, source: str) -> Any:
    """`yaml.safe_load(text)` once the text is within MAX_CHARS and expands to at most MAX_NODES nodes;
    ConfigError naming `source` otherwise. yaml.YAMLError propagates for text that is not YAML."""
    if len(text) > MAX_CHARS:
        raise ConfigError(f"{source}: its config is {len(text)} characters long (at most {MAX_CHARS}): not a config "
                          "seg wrote")  # fmt: skip
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None:
            _expanded_size(root, {}, set())
    except RecursionError as e:
        raise ConfigError(f"{source}: its config is nested too deeply: not a config seg wrote") from e
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    return yaml.safe_load(text)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Nodes under `node` counting every alias as a copy (memoised per node, so the walk itself stays linear)."""
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_nodes:
        raise ConfigError("its config holds an anchor that refers to itself: not a config seg wrote")
    open_nodes.add(id(node))
    children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else \
        node.value if isinstance(node, yaml.SequenceNode) else []  # fmt: skip
    size = 1 + sum(_expanded_size(c, sizes, open_nodes) for c in children)
    open_nodes.discard(id(node))
    if size > MAX_NODES:
        raise ConfigError(f"its config expands to more than {MAX_NODES} values (aliases of aliases): not a config "
                          "seg wrote")  # fmt: skip
    sizes[id(node)] = size
    return size
