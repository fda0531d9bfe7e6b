"""What a run was: the labels reports group by, read from its saved config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFENSE_TARGETS = {"Natural": "none", "PGDTraining": "pgd", "TRADES": "trades"}


def describe_run(run_config: Mapping[str, Any]) -> dict[str, Any]:
    """base defense, splitting scheme, dataset, model, seed and eps of a run's resolved config."""
    defense = run_config.get("defense") or {}
    if _target(defense) == "LayerwiseDefense":
        base, scheme = (
            DEFENSE_TARGETS.get(_target(defense.get("base") or {}), "pgd"),
            defense.get("scheme", "lie_trotter"),
        )
    else:
        base, scheme = DEFENSE_TARGETS.get(_target(defense), _target(defense) or "?"), "-"
    choices = run_config.get("choices") or {}
    return {
        "base": base,
        "scheme": scheme,
        "eta": defense.get("eta", "-") if scheme != "-" else "-",
        "dataset": choices.get("dataset")
        or str((run_config.get("dataset") or {}).get("_target_", "?")).rsplit(".", 1)[-1],
        "model": choices.get("model") or str((run_config.get("model") or {}).get("_target_", "?")).rsplit(".", 1)[-1],
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
