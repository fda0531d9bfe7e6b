"""Experiment loggers of a run (CSV, W&B, TensorBoard), configured by `conf/logger/`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig


def build_loggers(cfg: DictConfig | None, save_dir: Path, run: Mapping[str, Any] | None = None) -> list[Any]:
    """Instantiate each configured logger. W&B: offline without an API key, grouped by sweep,
    tagged with the run's dataset, model, base defense and scheme (`run`, from describe_run)."""
    loggers = []
    for node in (cfg or {}).values():
        kwargs: dict[str, Any] = {"save_dir": str(save_dir)}
        if "WandbLogger" in node.get("_target_", ""):
            if node.get("offline") is None:
                kwargs["offline"] = wandb_offline()
            if node.get("group") is None:
                kwargs["group"] = _sweep_name() or node.get("name")
            if node.get("tags") is None and run:
                kwargs["tags"] = wandb_tags(run)
        loggers.append(instantiate(node, **kwargs))
    return loggers


def wandb_offline() -> bool:
    """W&B writes offline unless there is an API key (or WANDB_MODE=online): no run needs a network."""
    return not (os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") == "online")


def wandb_tags(run: Mapping[str, Any]) -> list[str]:
    """A W&B run's tags: the run's dataset, model, base defense and scheme (`describe_run`)."""
    return [str(run[k]) for k in ("dataset", "model", "base", "scheme") if run.get(k) not in (None, "-")]


def _sweep_name() -> str | None:
    """The multirun's sweep directory name, or None outside a Hydra multirun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name


def finish_loggers(loggers: list[Any]) -> None:
    """End the run's W&B run: left open, Lightning's WandbLogger hands it to the next run made in
    this process, so every later job of a sequential multirun would log into the first job's run."""
    if any(type(logger).__name__ == "WandbLogger" for logger in loggers):
        import wandb

        wandb.finish()
