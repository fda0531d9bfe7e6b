"""What a run was: the labels reports group by, read from its saved config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFENSE_TARGETS = {"Natural": "none", "PGDTraining": "pgd", "FGSMRS": "fgsm_rs", "TRADES": "trades", "MART": "mart"}
SCHEME_NAMES = {"lie_trotter": "lad", "strang_marchuk": "lad_sm"}


def describe_run(run_config: Mapping[str, Any]) -> dict[str, Any]:
    """What a run trained and on what: `method` (e.g. "pgd", "trades+awp+lad_sm", "pgd+ema"), base
    defense, AWP gamma, splitting scheme, eta, EMA decay, dataset, model, seed and eps."""
    defense = run_config.get("defense") or {}
    layerwise = _target(defense) == "LayerwiseDefense"
    base_node = (defense.get("base") or {}) if layerwise else defense
    base = DEFENSE_TARGETS.get(_target(base_node), _target(base_node) or ("pgd" if layerwise else "?"))
    awp = (base_node.get("awp") or {}).get("gamma", "-") if isinstance(base_node.get("awp"), Mapping) else "-"
    scheme = defense.get("scheme", "lie_trotter") if layerwise else "-"
    ema = (run_config.get("ema") or {}).get("decay") or "-"
    parts = [
        base,
        "awp" if awp != "-" else "",
        SCHEME_NAMES.get(scheme, scheme) if layerwise else "",
        "ema" if ema != "-" else "",
    ]
    choices = run_config.get("choices") or {}
    return {
        "method": "+".join(p for p in parts if p),
        "base": base,
        "awp": awp,
        "scheme": scheme,
        "eta": defense.get("eta", "-") if layerwise else "-",
        "ema": ema,
        "dataset": choices.get("dataset") or _target(run_config.get("dataset") or {}) or "?",
        "model": choices.get("model") or _target(run_config.get("model") or {}) or "?",
        "seed": run_config.get("seed"),
        "eps": run_config.get("eps"),
    }


def _target(node: Mapping[str, Any]) -> str:
    """The class name a config node instantiates ("" if it names none)."""
    return str(node.get("_target_", "")).rsplit(".", 1)[-1] if isinstance(node, Mapping) else ""


def device_name(device: Any) -> str:
    """ "cpu" or the GPU's name, for results files."""
    import torch

    return torch.cuda.get_device_name(device) if getattr(device, "type", device) == "cuda" else "cpu"
