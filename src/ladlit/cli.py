"""Shared plumbing of the command-line tools: clear errors, loggers, callbacks, result tables."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from ladlit.errors import LadlitError

console = Console(stderr=True)


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


def build_loggers(cfg: DictConfig | None, save_dir: Path) -> list[Any]:
    """Instantiate each configured logger; W&B goes offline when no API key is configured."""
    loggers = []
    for name, node in (cfg or {}).items():
        kwargs: dict[str, Any] = {"save_dir": str(save_dir)}
        if "WandbLogger" in node.get("_target_", "") and node.get("offline") is None:
            kwargs["offline"] = not (os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") == "online")
        loggers.append(instantiate(node, **kwargs))
    return loggers


def accuracy_table(rows: Mapping[str, float], title: str) -> Table:
    """A two-column rich table of accuracies."""
    table = Table(title=title)
    table.add_column("evaluation")
    table.add_column("accuracy", justify="right")
    for name, acc in rows.items():
        table.add_row(name, f"{100 * acc:.2f}%")
    return table


def markdown_table(rows: Mapping[str, float], n_examples: int | None) -> str:
    lines = ["| evaluation | accuracy (%) |", "|---|---:|"]
    lines += [f"| {name} | {100 * acc:.2f} |" for name, acc in rows.items()]
    if n_examples:
        lines.append(f"\n{n_examples} test examples.")
    return "\n".join(lines) + "\n"


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write atomically, so an interrupted run never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)
