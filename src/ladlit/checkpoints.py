"""Checkpoints: finding and reading them (errors that say what is wrong and what to do), the
network they hold (`load_model`, from a ladlit run, a plain state_dict or a RobustBench zoo
model), and RobustBench's key layout."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from ladlit.config import build
from ladlit.errors import CheckpointError, ConfigError
from ladlit.locks import checkpoint_lock


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
    return read_checkpoint(path)[0]


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A checkpoint loaded onto the CPU, and its identity: epoch and global step (a Lightning
    checkpoint's; None for a plain state_dict) and the SHA-256 of its bytes, all of one read made
    under the folder's checkpoint lock, so they describe the weights loaded even while a training
    run replaces the file (`ladlit.locks.checkpoint_lock`)."""
    path = find_checkpoint(path)
    with checkpoint_lock(path.parent, reading=True):
        data = path.read_bytes()
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(err).__name__}: {err}). Is the file complete?"
        ) from None
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"{path} holds a {type(ckpt).__name__}, not a checkpoint dict or state_dict.")
    identity = {
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        "sha256": hashlib.sha256(data).hexdigest()[:16],
    }
    return dict(ckpt), identity


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


class LoadedModel(NamedTuple):
    """What `load_model` hands an evaluation: the network with its weights, where they came from,
    the run config and dataset config to test with, and the weights' identity (`read_checkpoint`)."""

    net: nn.Module
    path: Path
    run_config: dict[str, Any]
    dataset_cfg: Any
    identity: dict[str, Any]


def load_model(cfg: DictConfig) -> LoadedModel:
    """The network of `cfg.ckpt` with its weights, the checkpoint's path, its run config, the
    dataset config to test on and the weights' identity; fills `cfg.eps` and `cfg.dataset` from the
    run when not given."""
    if cfg.get("robustbench"):
        return load_robustbench(cfg)
    if OmegaConf.is_missing(cfg, "ckpt") or cfg.ckpt is None:
        raise ConfigError(
            "say what to evaluate: ckpt=<run directory or .ckpt> (a plain state_dict also needs model=... dataset=...)"
            " or robustbench=<model name> dataset=..."
        )
    path = find_checkpoint(str(cfg.ckpt))  # a number is a file name too (ckpt=123)
    ckpt, identity = read_checkpoint(path)
    run_config = (ckpt.get("hyper_parameters") or {}).get("run_config") or {}
    model_cfg = cfg.get("model") or run_config.get("model")
    dataset_cfg = cfg.get("dataset") or run_config.get("dataset")
    if model_cfg is None or dataset_cfg is None:
        raise CheckpointError(
            f"{path} carries no ladlit run config: name the architecture and data, e.g. model=preact_resnet18 dataset=cifar10"
        )
    with open_dict(cfg):
        cfg.dataset = dataset_cfg  # a model= given here reads ${dataset.*}
        if cfg.eps is None:
            cfg.eps = run_config.get("eps", 8 / 255)
    net = build(OmegaConf.create(model_cfg) if isinstance(model_cfg, dict) else model_cfg, key="model")
    load_weights(net, net_state_dict(ckpt), source=str(path))
    return LoadedModel(net, path, run_config, dataset_cfg, identity)


def load_robustbench(cfg: DictConfig) -> LoadedModel:
    """`load_model` for `robustbench=<name>`: the zoo's model for the given dataset, RobustBench's
    eps (8/255) unless `eps=` says otherwise."""
    if cfg.get("dataset") is None:
        raise ConfigError(f"name the test data of robustbench={cfg.robustbench}: e.g. dataset=cifar10")
    net, path = load_zoo_model(cfg.robustbench, cfg.dataset.num_classes, Path(cfg.robustbench_dir))
    with open_dict(cfg):
        cfg.eps = 8 / 255 if cfg.eps is None else cfg.eps
    identity = {"epoch": None, "global_step": None, "sha256": _file_sha256(path)}
    return LoadedModel(net, path, {}, cfg.dataset, identity)


def _file_sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


ZOO_DATASETS = {10: "cifar10", 100: "cifar100", 1000: "imagenet"}  # by number of classes
NO_PACKAGE = (
    "robustbench={name} needs the robustbench package, which does not import here ({error}). "
    "Without it, download the model's state_dict and evaluate that: "
    "ckpt=<file.pt> model=preact_resnet18|wide_resnet dataset=cifar10 (docs/evaluation.md)."
)


def load_zoo_model(name: str, num_classes: int, model_dir: Path) -> tuple[nn.Module, Path]:
    """RobustBench's L-inf model `name` for the dataset with `num_classes` classes, and the path of
    its weights (evaluations are recorded beside it). The model takes [0, 1] inputs."""
    if num_classes not in ZOO_DATASETS:
        raise ConfigError(
            f"RobustBench has no models for a {num_classes}-class dataset: use dataset=cifar10 or cifar100"
        )
    dataset = ZOO_DATASETS[num_classes]
    try:
        from robustbench.utils import load_model
    except Exception as error:  # ImportError, or a dependency that fails while importing
        raise ConfigError(NO_PACKAGE.format(name=name, error=f"{type(error).__name__}: {error}")) from None
    try:
        net = load_model(model_name=name, model_dir=str(model_dir), dataset=dataset, threat_model="Linf")
    except Exception as error:  # unknown name, no internet, interrupted download
        raise CheckpointError(
            f"could not load RobustBench model {name!r} ({dataset}, Linf): {type(error).__name__}: {error}. "
            f"Check the name on robustbench.github.io; its weights are downloaded into {model_dir} on first use, "
            "which needs internet."
        ) from None
    path = model_dir / dataset / "Linf" / f"{name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    return net.eval(), path
