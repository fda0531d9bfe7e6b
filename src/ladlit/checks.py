"""Range checks for configuration values: run by constructors for Python users, and on the whole
config before any training starts (`ladlit.config.validate_config`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ladlit.errors import ConfigError

_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "unit": (lambda v: 0.0 <= v <= 1.0, "in [0, 1] (pixel units: 8/255 = 0.0314)"),
    "positive_int": (lambda v: int(v) == v and v >= 1, "an integer >= 1"),
    "non_negative": (lambda v: v >= 0, ">= 0"),
}
# config key -> rule, wherever the key sits in the config tree
KEY_RULES = {
    "eps": "unit",
    "alpha": "unit",
    "steps": "positive_int",
    "restarts": "positive_int",
    "beta": "non_negative",
    "eta": "non_negative",
}


def check_unit_interval(name: str, value: float) -> float:
    """`value` if it lies in [0, 1], else a ConfigError naming `name`."""
    return check_rule(name, value, "unit")


def check_positive_int(name: str, value: int) -> int:
    """`value` if it is an integer >= 1, else a ConfigError naming `name`."""
    return int(check_rule(name, value, "positive_int"))


def check_non_negative(name: str, value: float) -> float:
    """`value` if it is >= 0, else a ConfigError naming `name`."""
    return check_rule(name, value, "non_negative")


def check_rule(name: str, value: Any, rule: str) -> Any:
    """`value` if it satisfies `rule` (a key of _RULES), else a ConfigError naming `name`."""
    test, must = _RULES[rule]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not test(value):
        raise ConfigError(f"{name} must be {must}, got {value!r}")
    return value
