"""Range checks for configuration values, run on the whole config before any training starts,
and by constructors for Python users."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from omegaconf import DictConfig, ListConfig

from ladlit.errors import ConfigError

_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "unit": (lambda v: 0.0 <= v <= 1.0, "in [0, 1] (pixel units: 8/255 = 0.0314)"),
    "positive_int": (lambda v: int(v) == v and v >= 1, "an integer >= 1"),
    "non_negative": (lambda v: v >= 0, ">= 0"),
}
# config key -> rule, wherever the key sits in the config tree
KEY_RULES = {"eps": "unit", "alpha": "unit", "steps": "positive_int", "restarts": "positive_int", "beta": "non_negative", "eta": "non_negative"}


def check_unit_interval(name: str, value: float) -> float:
    """`value` if it lies in [0, 1], else a ConfigError naming `name`."""
    return _check(name, value, "unit")


def check_positive_int(name: str, value: int) -> int:
    """`value` if it is an integer >= 1, else a ConfigError naming `name`."""
    return int(_check(name, value, "positive_int"))


def check_non_negative(name: str, value: float) -> float:
    """`value` if it is >= 0, else a ConfigError naming `name`."""
    return _check(name, value, "non_negative")


def _check(name: str, value: Any, rule: str) -> Any:
    test, must = _RULES[rule]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not test(value):
        raise ConfigError(f"{name} must be {must}, got {value!r}")
    return value


def validate_config(cfg: DictConfig) -> None:
    """Check every eps, alpha, steps, restarts, beta and eta in `cfg`, naming the full key on error."""
    for path, value in _leaves(cfg, ""):
        key = path.rsplit(".", 1)[-1].split("[")[0]
        if key in KEY_RULES and value is not None:
            _check(path, value, KEY_RULES[key])


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, DictConfig):
        for key in node.keys():
            if key != "hydra":
                yield from _leaves(node[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            yield from _leaves(item, f"{prefix}[{i}]")
    else:
        yield prefix, node
