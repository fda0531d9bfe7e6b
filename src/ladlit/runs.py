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
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        names = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    return {
        "cpu": cpu,
        "aten": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": onednn_cap(),
        "bf16": bf16_kernels(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def native_bf16() -> bool:
    """Whether bf16 is multiplied in hardware here (AVX-512 BF16 or AMX, unless a oneDNN cap hides
    it). Without it bf16 autocast is emulated: measured 9x slower than fp32 on an AVX2-only AMD
    EPYC (experiments/RESULTS.md 8.4)."""
    return bf16_kernels() != "emulated"


def why_bf16_is_emulated() -> str:
    """Why bf16 is emulated here, for a message: the CPU, or a oneDNN cap over hardware it hides."""
    if bf16_kernels(follow_cap=False) != "emulated":
        return f"the oneDNN cap ONEDNN_MAX_CPU_ISA={onednn_cap()} hides this CPU's bf16 hardware"
    return "this CPU has no bf16 hardware (no AVX-512 BF16 or AMX)"


# oneDNN's ISA caps (ONEDNN_MAX_CPU_ISA, or DNNL_MAX_CPU_ISA where that is unset), by what they
# leave of bf16: none (emulated), or the AVX-512 kernels they name: AVX512_CORE_BF16, which the
# EPYC and the capped Xeon share (RESULTS 11.3), or those with newer instructions, never compared
# with it. Any other cap allows AMX; oneDNN ignores a name it does not know, and so do we.
NO_BF16_CAPS = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"})
AVX512_CAPS = {
    "AVX512_CORE_BF16": "AVX512_CORE_BF16",
    "AVX512_CORE_FP16": "AVX10_1_512",
    "AVX10_1_512": "AVX10_1_512",
    "AVX10_2": "AVX10_2_512",
    "AVX10_2_512": "AVX10_2_512",
}


def onednn_cap() -> str | None:
    """The oneDNN ISA cap of this process, upper-cased (None: no cap)."""
    import os

    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return cap.strip().upper() if cap else None


def bf16_kernels(*, follow_cap: bool = True) -> str:
    """Which kernels compute bf16 here, by oneDNN's ISA name: "AMX", "AVX512_CORE_BF16", another
    AVX-512 cap's name, or "emulated"; under this process's oneDNN cap, or with `follow_cap=False`
    under none (what the CPU can do). A bf16 run repeats itself bit for bit only on its own kind: an
    AMX Xeon capped at AVX512_CORE_BF16 repeats an AMD EPYC's run (experiments/RESULTS.md 11.3)."""
    import torch

    cap = onednn_cap() if follow_cap else None
    avx512 = torch.cpu._is_avx512_bf16_supported()
    if cap in NO_BF16_CAPS or not avx512:
        return "emulated"
    if cap in AVX512_CAPS:
        return AVX512_CAPS[cap]
    if torch.cpu._is_amx_tile_supported() and torch.cpu._init_amx():  # the OS must grant AMX's tiles
        return "AMX"
    return "AVX512_CORE_BF16"
