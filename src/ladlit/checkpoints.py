"""Reading checkpoints with errors that say what is wrong and what to do."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ladlit.errors import CheckpointError


def find_checkpoint(path: str | Path) -> Path:
    """`path` itself, or for a run directory its checkpoints/best.ckpt (else last.ckpt)."""
    path = Path(path).expanduser()
    if path.is_dir():
        for candidate in (
            path / "checkpoints" / "best.ckpt",
            path / "checkpoints" / "last.ckpt",
            path / "best.ckpt",
            path / "last.ckpt",
        ):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"No checkpoints/best.ckpt or last.ckpt under run directory {path}.")
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist; pass a .ckpt file or a run directory.")
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint (Lightning or plain state_dict) onto the CPU."""
    path = find_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(err).__name__}: {err}). Is the file complete?"
        ) from None
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"{path} holds a {type(ckpt).__name__}, not a checkpoint dict or state_dict.")
    return dict(ckpt)


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Load `state_dict` into `model`, listing missing, unexpected and mis-shaped keys on mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [
        f"{k}: {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        details = "; ".join(
            f"{label} ({len(items)}): {', '.join(items[:4])}{' ...' if len(items) > 4 else ''}"
            for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes))
            if items
        )
        raise CheckpointError(
            f"{source} does not match the model {type(model).__name__}: {details}. Check the model= config."
        )
    model.load_state_dict(state_dict)


def net_state_dict(ckpt: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The backbone's weights from a Lightning checkpoint (prefix `net.`) or a plain state_dict."""
    state = ckpt.get("state_dict", ckpt)
    if any(k.startswith("net.") for k in state):
        return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    return dict(state)
