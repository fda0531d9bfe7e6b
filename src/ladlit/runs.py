"""What a run was: the labels reports group by, read from its saved config."""

from __future__ import annotations

from typing import Any, Mapping

DEFENSE_TARGETS = {"Natural": "none", "PGDTraining": "pgd", "TRADES": "trades"}


def describe_run(run_config: Mapping[str, Any]) -> dict[str, Any]:
    """base defense, splitting scheme, dataset, model, seed and eps of a run's resolved config."""
    defense = run_config.get("defense") or {}
    target = str(defense.get("_target_", "")).rsplit(".", 1)[-1]
    if target == "LayerwiseDefense":
        base, scheme = defense.get("base", "pgd"), defense.get("scheme", "lie_trotter")
    else:
        base, scheme = DEFENSE_TARGETS.get(target, target or "?"), "-"
    choices = run_config.get("choices") or {}
    return {
        "base": base,
        "scheme": scheme,
        "eta": defense.get("eta", "-") if scheme != "-" else "-",
        "dataset": choices.get("dataset") or str((run_config.get("dataset") or {}).get("_target_", "?")).rsplit(".", 1)[-1],
        "model": choices.get("model") or str((run_config.get("model") or {}).get("_target_", "?")).rsplit(".", 1)[-1],
        "seed": run_config.get("seed"),
        "eps": run_config.get("eps"),
    }
