"""Shared plumbing of the command-line tools: clear errors, loggers, callbacks, result tables."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from rich.console import Console

from ladlit.errors import ConfigError, LadlitError

console = Console(stderr=True)


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


BASE_KEYS = ("eps", "alpha", "steps", "beta", "bn_mode", "random_start")


def check_renamed_overrides(overrides: list[str]) -> None:
    """Refuse the pre-0.2 spellings of the base defense with the new one (Hydra's own error would
    suggest `+key=`, which composes a config that fails later)."""
    layerwise = any(re.fullmatch(r"defense=lad\w*", o) for o in overrides)
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "defense.base" and re.fullmatch(r"\w+", value):
            raise ConfigError(f"{override}: the base defense is a config node now; choose it with defense@defense.base={value}")
        if layerwise and key.startswith("defense.") and key.removeprefix("defense.") in BASE_KEYS:
            raise ConfigError(f"{override}: under a layer-wise defense the base's keys live in defense.base; write defense.base.{override.removeprefix('defense.')}")


def report_errors(main: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user-facing errors into one message and exit code 2, without a traceback."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except (LadlitError, InstantiationException) as err:
            console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            sys.exit(2)

    return wrapper


def device_name(device: Any) -> str:
    """"cpu" or the GPU's name, for results files."""
    import torch

    return torch.cuda.get_device_name(device) if getattr(device, "type", device) == "cuda" else "cpu"


def build_loggers(cfg: DictConfig | None, save_dir: Path, run: Mapping[str, Any] | None = None) -> list[Any]:
    """Instantiate each configured logger. W&B: offline without an API key, grouped by sweep,
    tagged with the run's dataset, model, base defense and scheme (`run`, from describe_run)."""
    loggers = []
    for name, node in (cfg or {}).items():
        kwargs: dict[str, Any] = {"save_dir": str(save_dir)}
        if "WandbLogger" in node.get("_target_", ""):
            if node.get("offline") is None:
                kwargs["offline"] = not (os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") == "online")
            if node.get("group") is None:
                kwargs["group"] = _sweep_name() or node.get("name")
            if node.get("tags") is None and run:
                kwargs["tags"] = [str(run[k]) for k in ("dataset", "model", "base", "scheme") if run.get(k) not in (None, "-")]
        loggers.append(instantiate(node, **kwargs))
    return loggers


def _sweep_name() -> str | None:
    """The multirun's sweep directory name, or None outside a Hydra multirun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name
