"""Range checks that constructors run on their own arguments. Each message names the parameter;
`ladlit.config.build`, which builds every object of a run from its config, puts the parameter's
place in the config in front (`defense.base.eps must be in [0, 1] ...`), so a rule lives in one
place: the constructor that needs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ladlit.errors import ConfigError


def check_unit_interval(name: str, value: float, hint: str) -> float:
    """`value` if it lies in [0, 1], else a ConfigError naming `name`, with `hint`: what the value
    means and a usual one (required: a generic hint was wrong for every value but one kind)."""
    return _check(name, value, lambda v: 0.0 <= v <= 1.0, f"in [0, 1] ({hint})")


def check_pixel_budget(name: str, value: float) -> float:
    """An L-inf budget or step in [0, 1] pixel units (images are scaled to [0, 1] before the model
    standardises them), refused with the usual value in those units."""
    return check_unit_interval(name, value, "pixel units: 8/255 = 0.0314")


def check_positive_int(name: str, value: int) -> int:
    """`value` if it is an integer >= 1, else a ConfigError naming `name`."""
    return int(_check(name, value, lambda v: int(v) == v and v >= 1, "an integer >= 1"))


def check_non_negative(name: str, value: float) -> float:
    """`value` if it is >= 0, else a ConfigError naming `name`."""
    return _check(name, value, lambda v: v >= 0, ">= 0")


def check_bool(name: str, value: bool) -> bool:
    """`value` if it is true or false, else a ConfigError naming `name` (a word such as `no` would
    otherwise count as true)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}", key=name)
    return value


SEED_MAX = 2**32 - 1  # the largest seed numpy (and so Lightning's seed_everything) accepts


def check_seed(name: str, value: int) -> int:
    """`value` if it is an integer in [0, SEED_MAX], else a ConfigError naming `name`."""
    return int(_check(name, value, lambda v: int(v) == v and 0 <= v <= SEED_MAX, f"an integer in [0, {SEED_MAX}]"))


def check_path(name: str, value: str) -> str:
    """`value` as a string if it can name a file or folder (a non-empty string, or a number such
    as a run named 2024), else a ConfigError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value) == "":
        raise ConfigError(f"{name} must be a non-empty name or path, got {value!r}", key=name)
    return str(value)


def check_list(name: str, value: Sequence[Any]) -> list[Any]:
    """`value` as a list if it is one, else a ConfigError naming `name` (a string would be read
    letter by letter)."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{name} must be a list such as [0.1, 0.2] ([] for none), got {value!r}", key=name)
    return list(value)


def _check(name: str, value: Any, test: Callable[[Any], bool], must: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not test(value):
        raise ConfigError(f"{name} must be {must}, got {value!r}", key=name)
    return value
