"""Reading checkpoints with errors that say what is wrong and what to do."""

from __future__ import annotations

import re
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
    """Load `state_dict` into `model`, listing missing, unexpected and mis-shaped keys on mismatch.
    A state_dict from elsewhere has no `normalize.*` buffers: the model's configured mean/std stay."""
    own = model.state_dict()
    state_dict = {**{k: v for k, v in own.items() if k.startswith("normalize.")}, **state_dict}
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
    """The backbone's weights from a Lightning checkpoint (prefix `net.`) or a plain state_dict,
    RobustBench key names translated to ours (`from_robustbench`)."""
    state = ckpt.get("state_dict", ckpt)
    if any(k.startswith("net.") for k in state):
        return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
    return from_robustbench(state) if _robustbench_family(state) else dict(state)


# RobustBench's PreActResNet (layerS.I.*, bn, linear) and WideResNet (blockS.layer.I.*, bn1, fc):
# the same layers as ours under other names; their stages are flattened into our `blocks` list.
_STAGE_KEY = {"preact": re.compile(r"layer(\d+)\.(\d+)\.(.*)"), "wrn": re.compile(r"block(\d+)\.layer\.(\d+)\.(.*)")}
_RENAMES = {
    "preact": {"conv1.": "stem.", "bn.": "head.0.", "linear.": "head.4.", "shortcut.0.": "shortcut."},
    "wrn": {"conv1.": "stem.", "bn1.": "head.0.", "fc.": "head.4.", "convShortcut.": "shortcut."},
}


def _robustbench_family(state: Mapping[str, Any]) -> str | None:
    if "linear.weight" in state and any(_STAGE_KEY["preact"].match(k) for k in state):
        return "preact"
    if "fc.weight" in state and any(_STAGE_KEY["wrn"].match(k) for k in state):
        return "wrn"
    return None


def from_robustbench(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A RobustBench PreActResNet-18 / WideResNet state_dict under our key names. Their models take
    [0, 1] inputs and normalise inside (or not at all): set model.mean/std to what theirs uses."""
    family = _robustbench_family(state)
    pattern, renames = _STAGE_KEY[family], _RENAMES[family]
    stage_blocks = sorted({(int(m[1]), int(m[2])) for k in state if (m := pattern.match(k))})
    flat = {pos: i for i, pos in enumerate(stage_blocks)}
    out = {}
    for key, value in state.items():
        if key.startswith("sub_block") or key.endswith(("relu1", "relu2")):
            continue  # WRN's unused extra block in some RobustBench checkpoints
        if m := pattern.match(key):
            rest = m[3]
            for old, new in renames.items():
                if old.startswith(("shortcut", "convShortcut")) and rest.startswith(old):
                    rest = new + rest.removeprefix(old)
            out[f"blocks.{flat[(int(m[1]), int(m[2]))]}.{rest}"] = value
        else:
            prefix = next((old for old in renames if key.startswith(old)), None)
            out[renames[prefix] + key.removeprefix(prefix) if prefix else key] = value
    return out
