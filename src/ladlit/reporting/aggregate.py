"""Aggregation behind `ladlit.report`: comparable numbers only, seeds counted, paired differences.

A run gives measurements: (checkpoint, number of test examples, eps, attack) -> accuracy, from
the test metrics `ladlit.train` writes (best checkpoint) and from the record `ladlit.eval` adds
to (any checkpoint; it takes precedence for the same measurement). The per-example worst case is
an attack of its own, named by the attacks it covers (`worst(pgd20+cw)`), never mixed with one
attack's number; numbers measured on different example sets (by their fingerprint) are neither
averaged nor paired. A row is one comparable
setting: the run's resolved config except its seed and bookkeeping, plus checkpoint, n and eps;
its cells are mean and std over distinct seeds. Rows are put in one table per context (data,
model, budget: everything but the defense), labelled by the defense keys that differ.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ladlit.records import (
    BOOKKEEPING,
    WORST,
    attack_signature,
    best_epoch,
    flatten_config,
    key_in,
    read_json,
    worst_name,
)
from ladlit.runs import SCHEME_NAMES, canonical_run, describe_run

ATTACK_ORDER = ["clean", "fgsm", "pgd10", "pgd20", "cw", "autoattack"]
# config keys that do not change what a run measures: bookkeeping, the seed (the report averages
# over it; the dataset's copy of it draws the batch order) and the defense's name (a row of the
# table, not a setting)
IGNORED = (*BOOKKEEPING, "seed", "dataset.seed", "choices.defense")
# keys added to the configs later, with the value every run written before them had: a record
# without one reads as having it, so old and new runs of one setting stay one row
ADDED_LATER = {
    "dataset.order_seed": 0,  # the batch order: every run before it trained on order 0
    "dataset.split_seed": 0,
    "model.conv_init": "pytorch",
    "model.zero_init_residual": False,
    "scheduler.warmup_epochs": 0,
}


@dataclass
class Run:
    """One training run: what it was (`setting`, `seed`) and what was measured on it."""

    path: Path
    seed: Any
    setting: dict[str, Any]
    measurements: dict[tuple[str, int, float, str], float] = field(default_factory=dict)
    examples: dict[tuple[str, int, float, str], str] = field(default_factory=dict)  # fingerprint of the images used
    signatures: dict[tuple[str, int, float, str], str] = field(
        default_factory=dict
    )  # the attack's settings, where recorded
    history: list[dict[str, float]] = field(default_factory=list)
    eps_sweeps: dict[str, dict[float, float]] = field(default_factory=dict)
    layer_profiles: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


@dataclass
class Row:
    """One comparable setting: its defense label, context, checkpoint, n, and (mean, std, seeds) per attack."""

    defense: dict[str, Any]
    context: dict[str, Any]
    checkpoint: str
    n: int
    eps: float
    per_seed: dict[str, dict[Any, float]]
    examples: dict[str, str] = field(default_factory=dict)  # attack -> fingerprint of its example set, where recorded

    def cell(self, attack: str) -> tuple[float, float | None, int] | None:
        values = list(self.per_seed.get(attack, {}).values())
        if not values:
            return None
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None, len(values)

    @property
    def seeds(self) -> int:
        return len({s for by_seed in self.per_seed.values() for s in by_seed})


def find_runs(paths: list[Path], notes: list[str]) -> list[Run]:
    """Every run under `paths`; runs that are unfinished, `fast_dev_run` or unreadable are left out
    with a line in `notes`."""
    runs = []
    for run_dir in sorted({d for p in paths for d in _run_dirs(Path(p))}):
        run = _read_run(run_dir, notes)
        if run is not None:
            runs.append(run)
    return runs


def _run_dirs(root: Path) -> Iterator[Path]:
    for file in root.rglob("metrics.json"):
        yield file.parent.parent if file.parent.name == "checkpoints" else file.parent


def _read_run(run_dir: Path, notes: list[str]) -> Run | None:
    train_file, eval_file = run_dir / "metrics.json", run_dir / "checkpoints" / "metrics.json"
    train = read_json(train_file) if train_file.exists() else {}
    evals = read_json(eval_file) if eval_file.exists() else {}
    for file, data in ((train_file, train), (eval_file, evals)):
        if data is None:
            notes.append(f"skipped {file}: not readable JSON (truncated?)")
    train, evals = train or {}, evals or {}
    if train.get("fast_dev_run"):
        notes.append(f"left out {run_dir}: a trainer.fast_dev_run run")
        return None
    if train.get("pruned"):
        notes.append(f"left out {run_dir}: pruned by its sweep ({train['pruned']})")
        return None
    if train and not train.get("finished", True):
        notes.append(f"left out {run_dir}: unfinished ({train.get('epochs', '?')} epochs)")
        return None
    described = canonical_run(train.get("run") or evals.get("run") or {})  # old names read as today's
    if not train and not evals.get("evaluations"):
        return None
    run = Run(
        run_dir, described.get("seed"), setting_of(train.get("config"), described), history=train.get("history") or []
    )
    eps = float(described.get("eps") or (train.get("config") or {}).get("eps") or 0.0)
    checkpoint = Path(train.get("best_checkpoint") or "best.ckpt").name
    tested = {k.removeprefix("test/acc_"): v for k, v in train.items() if k.startswith("test/acc_")}
    attacked = [a for a in tested if a not in ("clean", WORST)]
    for attack, value in tested.items():
        name = worst_name(attacked) if attack == WORST else attack
        measured = (checkpoint, int(train.get("test_examples") or 0), eps, name)
        run.measurements[measured] = float(value)
        if signature := _signature(train.get("attacks"), attacked if attack == WORST else [attack]):
            run.signatures[measured] = signature
    for key, entry in sorted((evals.get("evaluations") or {}).items(), key=lambda e: e[1].get("date", "")):
        if stale := _replaced_since(run_dir, train, entry):
            notes.append(f"left out {run_dir} '{key}': {stale}")
            continue
        where = (entry.get("checkpoint", "?"), int(entry.get("n_examples") or 0))
        for attack, acc in (entry.get("accuracy") or {}).items():
            covered = entry.get("worst_of") or []
            name = worst_name(covered) if attack == WORST else attack
            measured = (*where, float(entry.get("eps", eps)), name)
            run.measurements[measured] = float(acc)  # eval wins: read after train
            run.signatures.pop(measured, None)
            if signature := _signature(entry.get("attacks"), covered if attack == WORST else [attack]):
                run.signatures[measured] = signature
            if (entry.get("examples") or {}).get("sha1"):
                run.examples[measured] = entry["examples"]["sha1"]
            else:
                run.examples.pop(measured, None)
        if entry.get("eps_sweep"):
            run.eps_sweeps[where[0]] = {float(e): a for e, a in entry["eps_sweep"].items()}
        if entry.get("layer_profile"):
            run.layer_profiles[where[0]] = entry["layer_profile"]
    return run


def _signature(attacks: Mapping[str, Any] | None, names: list[str]) -> str | None:
    """The settings of the attacks `names` (one, or those a worst case covers) as one string; None
    when the record does not give them all (old records, clean accuracy)."""
    signatures = [attack_signature((attacks or {}).get(name)) for name in names]
    return " + ".join(signatures) if signatures and all(signatures) else None


def _replaced_since(run_dir: Path, train: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    """Why an evaluation entry no longer describes its run's checkpoint ("" if it still does or
    cannot tell): the file beside the record has other bytes, or, where only the records are kept,
    the run's record says that checkpoint is now another epoch."""
    measured, name = entry.get("checkpoint_identity") or {}, entry.get("checkpoint", "?")
    if not measured:
        return ""  # written before evaluations named their weights
    file = run_dir / "checkpoints" / name
    if file.is_file() and measured.get("sha256"):
        now = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
        return "" if now == measured["sha256"] else f"it measured {name} {measured['sha256']}, the file is now {now}"
    history = train.get("history") or []
    current = {"best.ckpt": best_epoch(history), "last.ckpt": history[-1] if history else None}.get(name)
    if current is None or measured.get("epoch") is None or current.get("epoch") == measured["epoch"]:
        return ""
    return f"it measured {name} of epoch {measured['epoch']}; the run's {name} is now epoch {current['epoch']}"


def setting_of(config: Mapping[str, Any] | None, described: Mapping[str, Any]) -> dict[str, Any]:
    """The run's comparable setting: `method` (e.g. "pgd+lad"), the base's keys as `base.*`, the
    layer-wise keys as `lad.*`, and every other config key that changes results (`ema.*` among them)."""
    if not config:  # a run written before configs went into metrics.json: what describe_run kept
        return {
            "method": _method(described),
            "lad.eta": described.get("eta"),
            "choices.dataset": described.get("dataset"),
            "choices.model": described.get("model"),
            "eps": described.get("eps"),
        }
    defense = dict(config.get("defense") or {})
    layerwise = str(defense.get("_target_", "")).endswith("LayerwiseDefense")
    base = dict(defense.pop("base", {}) or {}) if layerwise else defense
    # named from the config, so a record written before its defense had a name of its own (FGSM-RS's
    # early runs recorded the class name "FGSMRS") joins the later ones
    setting: dict[str, Any] = {"method": describe_run(config)["method"] if defense else _method(described)}
    setting.update({f"base.{k}": v for k, v in _leaves(base)})
    if layerwise:
        setting.update({f"lad.{k}": v for k, v in _leaves(defense) if k not in ("_target_", "scheme")})
    rest = {k: v for k, v in config.items() if k != "defense"}
    setting.update({k: v for k, v in _leaves(rest) if not key_in(k, IGNORED)})
    for key, before in ADDED_LATER.items():
        if key in setting and setting[key] == before:
            del setting[key]  # the value an old record implies by not having the key
    if not setting.get("scheduler.warmup_epochs"):
        setting.pop("scheduler.warmup_start", None)  # a warm-up's start means nothing without one
    return setting


def _method(described: Mapping[str, Any]) -> str:
    """e.g. "pgd+lad_sm": what describe_run calls the method (rebuilt for runs written before it did)."""
    if described.get("method"):
        return str(described["method"])
    base, scheme = described.get("base", "?"), described.get("scheme", "-")
    return base if scheme in ("-", None) else f"{base}+{SCHEME_NAMES.get(scheme, scheme)}"


def _leaves(node: Any) -> Iterator[tuple[str, Any]]:
    return ((key, _hashable(value)) for key, value in flatten_config(node))


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def is_defense_key(key: str) -> bool:
    """Keys of what was trained (defense, weight averaging), as opposed to the context it ran in."""
    return key == "method" or key.startswith(("base.", "lad.", "ema."))


def summarize(runs: list[Run], notes: list[str] | None = None) -> list[Row]:
    """Rows of comparable measurements: same setting, checkpoint, n and eps; seeds distinct; where
    the example sets are recorded, the same examples (a measurement on others is left out, noted)."""
    groups: dict[tuple, dict[str, dict[Any, float]]] = defaultdict(lambda: defaultdict(dict))
    fingerprints: dict[tuple, dict[str, str]] = defaultdict(dict)
    settings: dict[tuple, dict[str, Any]] = {}
    usual = _usual_signatures(runs)
    for run in runs:
        frozen = tuple(sorted(run.setting.items(), key=lambda kv: kv[0]))
        for measured, acc in run.measurements.items():
            checkpoint, n, eps, attack = measured
            if (signature := run.signatures.get(measured)) and signature != usual.get(attack):
                attack = f"{attack} [{signature}]"  # other settings: a column of its own, never averaged in
            key = (frozen, checkpoint, n, round(eps, 8))
            settings[key] = run.setting
            if (mine := run.examples.get(measured)) is not None:
                known = fingerprints[key].setdefault(attack, mine)
                if known != mine:
                    if notes is not None:
                        notes.append(
                            f"left out {run.path} {checkpoint} {attack} (n={n}): measured on other examples than its row's other seeds"
                        )
                    continue
            groups[key][attack][run.seed] = acc  # the same seed twice (a rerun) counts once
    rows = []
    for key, per_seed in groups.items():
        setting = settings[key]
        rows.append(
            Row(
                defense={k: v for k, v in setting.items() if is_defense_key(k)},
                context={k: v for k, v in setting.items() if not is_defense_key(k)},
                checkpoint=key[1],
                n=key[2],
                eps=key[3],
                per_seed=dict(per_seed),
                examples=dict(fingerprints.get(key, {})),
            )
        )
    return sorted(
        rows,
        key=lambda r: (_sort_key(r.context), r.checkpoint, -r.n, r.defense.get("method", ""), _sort_key(r.defense)),
    )


def _usual_signatures(runs: list[Run]) -> dict[str, str]:
    """Per attack name, the settings most of its measurements were made with (the first on a tie)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for run in runs:
        for measured, signature in run.signatures.items():
            counts[measured[3]][signature] += 1
    return {attack: c.most_common(1)[0][0] for attack, c in counts.items()}


def _sort_key(mapping: Mapping[str, Any]) -> str:
    return repr(sorted((k, str(v)) for k, v in mapping.items()))


ALWAYS_SHOWN = ("lad.eta",)


def differing_keys(mappings: list[Mapping[str, Any]]) -> list[str]:
    """Keys with more than one value among the mappings that have them, and eta wherever present."""
    keys = sorted({k for m in mappings for k in m})
    return [k for k in keys if k in ALWAYS_SHOWN or len({repr(m[k]) for m in mappings if k in m}) > 1]


def context_keys(contexts: list[Mapping[str, Any]]) -> list[str]:
    """Keys that tell the report's contexts apart. Unlike `differing_keys`, a key that some contexts
    lack counts as differing: an option added later is absent where it was left at its default, so
    `model.conv_init=he` is all that tells a run with it from one without."""
    keys = sorted({k for m in contexts for k in m})
    return [k for k in keys if len({repr(m.get(k, _ABSENT)) for m in contexts}) > 1]


_ABSENT = object()


def label(mapping: Mapping[str, Any], keys: list[str]) -> str:
    """`key=value` for each of `keys` that the mapping has (prefixes lad./base. dropped)."""
    parts = [
        f"{k.removeprefix('lad.').removeprefix('base.')}={mapping[k]}" for k in keys if k in mapping and k != "method"
    ]
    return " ".join(([str(mapping["method"])] if "method" in mapping else []) + parts)


def matches(row: Row, spec: Mapping[str, str]) -> bool:
    """Whether the row's defense has every `key=value` of `spec` (keys with or without prefix)."""
    for key, value in spec.items():
        found = [v for k, v in row.defense.items() if k == key or k.split(".", 1)[-1] == key]
        if not found or str(found[0]) != value:
            return False
    return True


def is_reference(candidate: Row, row: Row, spec: Mapping[str, str] | None) -> bool:
    """Whether `candidate` is `row`'s reference: `spec` if given, else `row`'s base defense alone
    (no layer-wise keys, nothing added), so FGSM-RS + LAD pairs with FGSM-RS and PGD-AT + AWP + LAD
    with PGD-AT; a base defense alone (FGSM-RS) pairs with PGD-AT."""
    if spec:
        return matches(candidate, spec)
    method = str(row.defense.get("method", ""))
    base = method.split("+")[0]
    wanted = "pgd" if method == base else base  # a layer-wise method always names its scheme
    return not any(k.startswith("lad.") for k in candidate.defense) and candidate.defense.get("method") == wanted


def same_examples(row: Row, reference: Row, attack: str) -> bool:
    """False only when both rows recorded their examples for `attack` and they differ."""
    mine, theirs = row.examples.get(attack), reference.examples.get(attack)
    return mine is None or theirs is None or mine == theirs


def paired_difference(row: Row, reference: Row, attack: str) -> tuple[float, float | None, int] | None:
    """Mean over common seeds of (row - reference), its standard error, and the number of pairs;
    None when there is no common seed or the two were measured on different examples."""
    if not same_examples(row, reference, attack):
        return None
    mine, theirs = row.per_seed.get(attack, {}), reference.per_seed.get(attack, {})
    diffs = [mine[s] - theirs[s] for s in mine if s in theirs]
    if not diffs:
        return None
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else None
    return statistics.mean(diffs), se, len(diffs)


def columns(rows: list[Row]) -> list[str]:
    found = {a for r in rows for a in r.per_seed}
    return [a for a in ATTACK_ORDER if a in found] + sorted(found - set(ATTACK_ORDER))


def tables_by_context(rows: list[Row]) -> dict[tuple, list[Row]]:
    """Rows grouped by context (everything but the defense) and eps."""
    grouped: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[(_sort_key(row.context), row.eps)].append(row)
    return dict(grouped)
