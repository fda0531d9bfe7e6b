"""Resuming a run without surprises: which checkpoint, whether it was trained with this config,
and never training over a finished run's results.

A rerun into a run directory resumes from its last.ckpt only if the stored config equals the new
one up to the keys in RESUMABLE (those that may change on resume: a longer schedule, other
devices, logging); anything else stops with the keys that differ. `force_resume=true` resumes
anyway. A finished run is only continued to a larger `trainer.max_epochs`; its results so far
are kept as metrics.<epochs>epochs.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ladlit.checkpoints import find_checkpoint, load_checkpoint, load_weights, net_state_dict
from ladlit.errors import CheckpointError, ConfigError
from ladlit.locks import TRAIN_LOCK, TRAIN_OWNER
from ladlit.records import BOOKKEEPING, flatten_config, key_in

# config keys (and key prefixes) that may differ between a run and its resumption: bookkeeping,
# a longer schedule, and the names of the config groups chosen (their values are compared key by key)
RESUMABLE = (*BOOKKEEPING, "trainer.max_epochs", "choices")


def resume_checkpoint(
    ckpt_path: Any, run_config: Mapping[str, Any], net: Any, out_dir: Path, force: bool = False
) -> str | None:
    """The checkpoint to resume from, checked before Lightning touches it: readable, trained with
    this config, and not the end of a finished run. Loads its weights into `net`.

    `ckpt_path=null` resumes from this run directory's last.ckpt when there is one; `ckpt_path=last`
    insists on it; any other value is a checkpoint file or run directory.
    """
    own_last = out_dir / "checkpoints" / "last.ckpt"
    if ckpt_path is None and not own_last.is_file():
        return None
    if ckpt_path in (None, "last"):
        if not own_last.is_file():
            raise CheckpointError(
                f"ckpt_path=last, but {own_last} does not exist: rerun with hydra.run.dir=<the run to resume> or ckpt_path=<a .ckpt>"
            )
        ckpt_path = own_last
    path = find_checkpoint(str(ckpt_path))
    ckpt = load_checkpoint(path)
    if "state_dict" not in ckpt or "epoch" not in ckpt:
        raise CheckpointError(
            f"{path} is not a training checkpoint of ladlit (no state_dict/epoch); resume from <run dir>/checkpoints/last.ckpt"
        )
    stored = (ckpt.get("hyper_parameters") or {}).get("run_config")
    if stored is not None and not force:
        check_same_config(stored, run_config, path)
    keep_finished_results(out_dir, run_config)
    load_weights(net, net_state_dict(ckpt), source=str(path))
    return str(path)


def check_same_config(stored: Mapping[str, Any], current: Mapping[str, Any], source: Path) -> None:
    """ConfigError naming every key (outside RESUMABLE) whose value differs."""
    old, new = dict(flatten_config(stored)), dict(flatten_config(current))
    differing = [
        k
        for k in sorted(set(old) | set(new))
        if not key_in(k, RESUMABLE) and old.get(k, "<absent>") != new.get(k, "<absent>")
    ]
    if differing:
        shown = "; ".join(f"{k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}" for k in differing[:8])
        more = f" (and {len(differing) - 8} more)" if len(differing) > 8 else ""
        raise ConfigError(
            f"{source} was trained with another config: {shown}{more}. Start a fresh run in a new directory "
            "(leave out hydra.run.dir, or name a new one), or resume anyway with force_resume=true."
        )


def keep_finished_results(out_dir: Path, run_config: Mapping[str, Any]) -> None:
    """Refuse to retrain a finished run; before extending one, keep its metrics.json aside."""
    metrics = out_dir / "metrics.json"
    try:
        done = json.loads(metrics.read_text()) if metrics.is_file() else {}
    except ValueError:
        done = {}
    if not done.get("finished"):
        return
    epochs = int(done.get("epochs") or 0)
    if int(run_config.get("trainer", {}).get("max_epochs") or 0) <= epochs:
        raise ConfigError(
            f"{out_dir} holds a finished run ({epochs} epochs, metrics.json); its results are kept. To train it "
            f"further, raise trainer.max_epochs above {epochs}; for a new run, leave out hydra.run.dir or name a new one."
        )
    os.replace(metrics, out_dir / f"metrics.{epochs}epochs.json")


# What a start writes before it has results: Hydra's log, the saved config, the lock, logger
# folders, an empty checkpoint folder
START_LEFTOVERS = ("train.log", ".hydra", TRAIN_LOCK, TRAIN_OWNER, "csv", "tensorboard", "wandb", "checkpoints")


def discard_empty_run_dir(out_dir: Path) -> None:
    """Remove what a failed start left in `out_dir`, and the directory if nothing else is in it,
    then its parent if that is left empty (the `outputs/<name>/` Hydra made for it), unless the
    parent is the working directory or outside it. A run with results (a checkpoint or metrics) is
    never touched, nor any file a start does not write: a directory the user had filled keeps its files."""
    if not out_dir.is_dir() or any(out_dir.rglob("*.ckpt")) or any(out_dir.rglob("metrics*.json")):
        return
    for name in START_LEFTOVERS:
        leftover = out_dir / name
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        elif leftover.exists():
            leftover.unlink()
    with contextlib.suppress(OSError):  # rmdir removes only an empty directory
        out_dir.rmdir()
        parent = out_dir.absolute().parent  # the path as named: a linked outputs/ stays, its target too
        if Path.cwd() in parent.parents:
            parent.rmdir()
