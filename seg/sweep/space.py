"""What a search explores and what it keeps fixed, checked before its study opens.

`search_space` reads `hydra.sweeper.params` and the command line's overrides into Optuna distributions and fixed
overrides, refusing a bad interval in one line. `trial_config` composes the config a trial job gets (the fixed
overrides and a value of each searched key), checked like any run's, and `shared_settings` is what every trial of
the study shares: its result-affecting keys minus the searched ones.
"""

from __future__ import annotations

from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override
from hydra.errors import HydraException
from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override
from omegaconf import DictConfig
from optuna.distributions import BaseDistribution, CategoricalDistribution

from seg.config import result_items, typed_job_config
from seg.errors import ConfigError
from seg.schema import TrainConfig

EXAMPLE = "e.g. optimizer.lr: tag(log, interval(1e-5, 1e-2))"


def search_space(arguments: list[str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """({key: distribution} of the searched keys, {key: value} of the fixed overrides) of `key=value` arguments.

    Raises ConfigError for an interval whose bounds are reversed, a log range that reaches 0, or an
    override Optuna cannot search.
    """
    distributions: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for argument in arguments:
        override = _parse(argument)
        _check_interval(override)
        try:
            value = create_optuna_distribution_from_override(override)
        except (ValueError, AssertionError, NotImplementedError) as e:
            raise ConfigError(f"invalid search space: {argument}: {e or 'not searchable'}; {EXAMPLE}") from e
        key = override.get_key_element()
        if isinstance(value, BaseDistribution):
            distributions[key] = value
        else:
            fixed[key] = value
    for key in fixed:
        distributions.pop(key, None)
    return distributions, fixed


def _parse(argument: str) -> Override:
    try:
        return OverridesParser.create().parse_override(argument)
    except HydraException as e:
        raise ConfigError(f"invalid search space: {argument}: {str(e).splitlines()[0]}; {EXAMPLE}") from e


def _check_interval(override: Override) -> None:
    value = override.value() if override.is_interval_sweep() else None
    if not isinstance(value, IntervalSweep):
        return
    where = f"invalid search space: {override.input_line}"
    if value.start > value.end:
        raise ConfigError(f"{where}: the bounds are reversed; write interval(low, high), {EXAMPLE}")
    if "log" in value.tags and value.start <= 0:
        raise ConfigError(f"{where}: a log range must lie above 0 (low is {value.start}); {EXAMPLE}")


def trial_config(
    loader: Any, master: DictConfig, distributions: dict[str, BaseDistribution], fixed: dict[str, str]
) -> TrainConfig:
    """The checked config of a trial job, composed as the launcher will (ConfigError, one line, if invalid).

    Composed once per categorical choice, so that a choice of a config group that does not exist is refused
    before the study opens; the first composition is returned.
    """
    overrides = [f"{key}={value}" for key, value in fixed.items()]
    first = {key: _values(d)[0] for key, d in distributions.items()}
    variants = [first] + [{**first, key: v} for key, d in distributions.items() for v in _values(d)[1:]]
    configs = []
    for values in variants:
        cfg = loader.load_sweep_config(master, overrides + [f"{key}={value}" for key, value in values.items()])
        configs.append(typed_job_config(cfg))
    return configs[0]


def _values(distribution: BaseDistribution) -> list[Any]:
    """Values of `distribution` a trial may get: every choice of a categorical one, else its low end."""
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    return [distribution.low]


def shared_settings(cfg: TrainConfig, searched: list[str], direction: str) -> dict[str, Any]:
    """{key: value} every trial of the search shares: the result-affecting keys of `cfg` except the searched ones
    (a searched config group: all of its keys), and the direction of the search."""
    settings = {
        key: value
        for key, value in result_items(cfg).items()
        if not any(key == s or key.startswith(f"{s}.") for s in searched)
    }
    return {**settings, "hydra.sweeper.direction": direction}
