"""Range checks that constructors run on their own arguments. Each message names the parameter;
`ladlit.config.build`, which builds every object of a run from its config, puts the parameter's
place in the config in front (`defense.base.eps must be in [0, 1] ...`), so a rule lives in one
place: the constructor that needs it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ladlit.errors import ConfigError


def check_unit_interval(name: str, value: float) -> float:
    """`value` if it lies in [0, 1], else a ConfigError naming `name`."""
    return _check(name, value, lambda v: 0.0 <= v <= 1.0, "in [0, 1] (pixel units: 8/255 = 0.0314)")


def check_positive_int(name: str, value: int) -> int:
    """`value` if it is an integer >= 1, else a ConfigError naming `name`."""
    return int(_check(name, value, lambda v: int(v) == v and v >= 1, "an integer >= 1"))


def check_non_negative(name: str, value: float) -> float:
    """`value` if it is >= 0, else a ConfigError naming `name`."""
    return _check(name, value, lambda v: v >= 0, ">= 0")


def _check(name: str, value: Any, test: Callable[[Any], bool], must: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not test(value):
        raise ConfigError(f"{name} must be {must}, got {value!r}", key=name)
    return value
