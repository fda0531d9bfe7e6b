"""Composing and checking run configs: what `python -m ladlit.<tool> <overrides>` runs with, for
scripts, notebooks and tests, and the checks every config passes before any work starts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, open_dict

from ladlit.checks import KEY_RULES, check_rule
from ladlit.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_config(name: str, overrides: list[str], output_dir: str | Path | None = None) -> DictConfig:
    """The config `python -m ladlit.<name> <overrides>` would run with, for scripts, notebooks and
    tests; without its `hydra` node. A run config's `output_dir` defaults to the directory Hydra
    would have made.

    Interpolations stay lazy, as in a Hydra run (`ladlit.eval` fills `eps` from the checkpoint
    after composing); `${hydra:...}` ones resolve against this compose until the next one."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(name, list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        if "output_dir" in cfg:
            cfg.output_dir = str(output_dir or cfg.hydra.run.dir)
        del cfg.hydra
    return cfg


def validate_config(cfg: DictConfig) -> None:
    """Check every eps, alpha, steps, restarts, beta and eta in `cfg`, naming the full key on error."""
    for path, value in _leaves(cfg, ""):
        key = path.rsplit(".", 1)[-1].split("[")[0]
        if key in KEY_RULES and value is not None:
            check_rule(path, value, KEY_RULES[key])


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


BASE_KEYS = ("eps", "alpha", "steps", "beta", "bn_mode", "random_start")


def check_renamed_overrides(overrides: list[str]) -> None:
    """Refuse the pre-0.2 spellings of the base defense with the new one (Hydra's own error would
    suggest `+key=`, which composes a config that fails later)."""
    layerwise = any(re.fullmatch(r"defense=lad\w*", o) for o in overrides)
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "defense.base" and re.fullmatch(r"\w+", value):
            raise ConfigError(
                f"{override}: the base defense is a config node now; choose it with defense@defense.base={value}"
            )
        if layerwise and key.startswith("defense.") and key.removeprefix("defense.") in BASE_KEYS:
            raise ConfigError(
                f"{override}: under a layer-wise defense the base's keys live in defense.base; write defense.base.{override.removeprefix('defense.')}"
            )
