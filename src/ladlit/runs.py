"""What a run was: the labels reports group by, read from its saved config."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFENSE_TARGETS = {"Natural": "none", "PGDTraining": "pgd", "FGSMRS": "fgsm_rs", "TRADES": "trades", "MART": "mart"}
SCHEME_NAMES = {"lie_trotter": "lad", "strang_marchuk": "lad_sm"}
BASES = frozenset(DEFENSE_TARGETS.values())  # the one name of each base defense in a record's `run`
SCHEMES = frozenset({*SCHEME_NAMES, "-"})  # ... and of each splitting scheme ("-": not layer-wise)


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
    choices = run_config.get("choices") or {}
    return {
        "method": method_name(base, awp, scheme, ema),
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


def method_name(base: str, awp: Any = "-", scheme: str = "-", ema: Any = "-") -> str:
    """e.g. "pgd", "trades+awp+lad_sm", "pgd+ema": the base, then what rides on it."""
    parts = [base, "awp" if awp != "-" else "", SCHEME_NAMES.get(scheme, scheme) if scheme != "-" else ""]
    return "+".join(p for p in [*parts, "ema" if ema != "-" else ""] if p)


def canonical_run(described: Mapping[str, Any]) -> dict[str, Any]:
    """A record's `run` block as `describe_run` names things today, whenever it was written: a base
    recorded by its class name (FGSM-RS's first runs wrote "FGSMRS") by its config name, and the
    method rebuilt from base, AWP, scheme and EMA (records older than the method label lack it).
    Read every record's `run` through this, so grouping by a name never splits one arm in two."""
    if not described:
        return {}
    run = {"awp": "-", "ema": "-", **described}
    base, scheme = str(run.get("base") or "?"), str(run.get("scheme") or "-")
    run["base"], run["scheme"] = DEFENSE_TARGETS.get(base, base), scheme
    run["method"] = method_name(run["base"], run["awp"], scheme, run["ema"])
    return run


def _target(node: Mapping[str, Any]) -> str:
    """The class name a config node instantiates ("" if it names none)."""
    return str(node.get("_target_", "")).rsplit(".", 1)[-1] if isinstance(node, Mapping) else ""


def device_name(device: Any) -> str:
    """ "cpu" or the GPU's name, for results files."""
    import torch

    return torch.cuda.get_device_name(device) if getattr(device, "type", device) == "cuda" else "cpu"


def cpu_kernels() -> dict[str, Any]:
    """Which CPU and kernels computed a run, for its record: a bf16 run repeats itself bit for bit
    only on the same kernels (an Intel Xeon's AMX and an AMD EPYC's AVX-512 BF16 round differently;
    `ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16` makes the Xeon round as the EPYC: experiments/RESULTS.md 11)."""
    import os
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        names = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    return {
        "cpu": cpu,
        "aten": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "bf16": bf16_kernels(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX). Without it bf16 autocast
    is emulated: measured 9x slower than fp32 on an AVX2-only AMD EPYC (experiments/RESULTS.md 8.4)."""
    return bf16_kernels() != "emulated"


# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that still allow its AVX-512 BF16 kernels but not AMX.
AVX512_BF16_CAPS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512")


def bf16_kernels() -> str:
    """Which kernels compute bf16 here, by oneDNN's ISA name: "AMX", "AVX512_CORE_BF16", or
    "emulated". The two native kinds round differently, so a bf16 run repeats itself only on its
    own kind; under `ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16` an AMX CPU computes as an AVX-512 BF16
    one, bit for bit (experiments/RESULTS.md 11.3)."""
    import os

    import torch

    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or "ALL").upper()
    if torch.cpu._is_amx_tile_supported() and (cap == "ALL" or "AMX" in cap):
        return "AMX"
    if torch.cpu._is_avx512_bf16_supported() and (cap == "ALL" or "AMX" in cap or cap in AVX512_BF16_CAPS):
        return "AVX512_CORE_BF16"
    return "emulated"
