"""Reading and writing the JSON records runs leave behind (metrics.json, evaluation records):
atomically, so an interrupted process never leaves half a file, and tolerantly, so a truncated
one reads as missing instead of crashing a report. Training and evaluation both use it, so
training needs nothing from the evaluation package."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypedDict

WORST = "worst"  # the name of the per-example worst case over attacks, wherever it is recorded or shown

# Config keys (and key prefixes) that change neither what a run learns nor what it measures:
# where things are written and read, logging, devices, speed. Resuming may change them, and the
# report pools runs that differ only in them.
BOOKKEEPING = (
    "name",
    "output_dir",
    "data_dir",
    "ckpt_path",
    "force_resume",
    "one_gpu_per_job",
    "logger",
    "callbacks",
    "speed",
    "hydra",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.accelerator",
    "trainer.sync_batchnorm",
    "trainer.log_every_n_steps",
    "trainer.enable_progress_bar",
    "trainer.benchmark",
    "dataset.path",
    "dataset.root",
    "dataset.cache_dir",
    "dataset.download",
    "dataset.num_workers",
    "dataset.eval_batch_size",
    "dataset.device_resident",
)


def flatten_config(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf value) for every leaf of a nested config mapping."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from flatten_config(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), node


def key_in(key: str, prefixes: Iterable[str]) -> bool:
    """Whether dotted `key` is one of `prefixes` or lies under one of them."""
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None if it is missing, truncated or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write atomically, so an interrupted run never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


SELECTS_CHECKPOINT = "val/robust_acc"  # the history key whose maximum picks the best checkpoint
LEAKING = "val/leaking"  # 1 in an epoch the label-leak guard flagged: never selected


def selectable(record: Mapping[str, Any]) -> bool:
    """Whether an epoch can be the best checkpoint: it validated, and the label-leak guard did not
    flag it (its robust accuracy may be the network reading its own perturbation's label)."""
    return SELECTS_CHECKPOINT in record and not record.get(LEAKING, 0) > 0


def best_epoch(history: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The selectable epoch record of a run's history with the highest robust validation accuracy,
    the first one on a tie (the epoch whose checkpoint `best.ckpt` is); None if there is none."""
    candidates = [record for record in history if selectable(record)]
    return max(candidates, key=lambda record: record[SELECTS_CHECKPOINT]) if candidates else None


def attack_signature(settings: Mapping[str, Any] | str | None) -> str | None:
    """An attack's settings as one comparable string, e.g. `PGD(eps=0.03137, alpha=0.007843,
    steps=20, restarts=1, random_start=True, loss=ce)`, the form old records kept as a repr
    (their speed-only fields and timings dropped); None when a record does not say."""
    if settings is None:
        return None
    if isinstance(settings, str):
        return re.sub(r", (workers=\d+|seconds=defaultdict\(.*\}\))", "", settings)
    args = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in settings.items() if k != "attack"
    )
    return f"{settings.get('attack', '?')}({args})"


def worst_name(attacks: list[str]) -> str:
    """How the per-example worst case over `attacks` is shown and reported: e.g. `worst(pgd20+cw)`."""
    return f"{WORST}({'+'.join(attacks)})" if attacks else WORST


def evaluation_key(checkpoint: str, kind: str, eps: float | None, n_examples: int) -> str:
    """e.g. "best.ckpt | pgd20+cw | eps=8/255 | n=5000": checkpoint, what was measured, eps, n."""
    eps_text = "-" if eps is None else f"{eps * 255:.4g}/255"
    return f"{checkpoint} | {kind} | eps={eps_text} | n={n_examples}"


def has_evaluation(record: Mapping[str, Any] | None, checkpoint: str, kind: str, n_examples: int | None = None) -> bool:
    """Whether an evaluation record holds `kind` ("pgd20+cw", "clean", "sanity", ...) measured on
    `checkpoint` ("best.ckpt"), on `n_examples` examples if given, at any eps."""
    for key in (record or {}).get("evaluations", {}):
        parts = key.split(" | ")
        if (
            len(parts) == 4
            and parts[:2] == [checkpoint, kind]
            and n_examples in (None, int(parts[3].removeprefix("n=")))
        ):
            return True
    return False


# The schema of the records, for readers and type checkers; every field may be missing in a record
# written by an older version, so readers use .get().
class EvaluationEntry(TypedDict, total=False):
    """One evaluation in a checkpoint's record (`evaluations[evaluation_key(...)]`)."""

    checkpoint: str  # file name, e.g. "best.ckpt"
    checkpoint_identity: dict[str, Any]  # the weights measured: epoch, global_step, sha256 (first 16 hex)
    device: str
    date: str
    eps: float  # absent where no budget applies (eps sweep, layer profile)
    n_examples: int
    accuracy: dict[str, float]  # "clean", each attack, and "worst" over two or more
    seconds: dict[str, float]
    attacks: dict[str, Any]  # name -> the attack's settings (Attack.settings; a repr string in old records)
    examples: dict[str, Any]  # which test examples: split, first n, sha1 of images and labels
    worst_of: list[str]  # the attacks "worst" covers
    worst_includes_clean: bool  # "worst" also needs the clean prediction right (absent: written before it did)
    evaluation: str  # an extra evaluation's class (ladlit.evaluation.extra); its result under its name


class EvaluationRecord(TypedDict, total=False):
    """checkpoints/metrics.json: what `ladlit.eval` adds to, beside the checkpoints."""

    run: dict[str, Any]  # ladlit.runs.describe_run of the run's config
    evaluations: dict[str, EvaluationEntry]


class RunRecord(TypedDict, total=False):
    """<run>/metrics.json as `ladlit.train` writes it, beside its test metrics ("test/acc_<attack>")."""

    run: dict[str, Any]
    best_checkpoint: str | None  # relative to the run directory
    selection: str  # how the tested checkpoint was chosen (`ladlit.train.selection`)
    test_examples: int | None
    finished: bool
    fast_dev_run: bool
    epochs: int
    train_seconds_per_epoch: float | None
    wall_seconds: float
    device: str
    kernels: dict[str, Any]  # the CPU and kernels (ladlit.runs.cpu_kernels): bf16 results repeat only on the same
    date: str
    history: list[dict[str, float]]  # one record per epoch (EpochHistory)
    worst_includes_clean: bool  # val/robust_acc needs the clean prediction right too (absent: written before)
    attacks: dict[str, Any]  # the validation and test attacks' settings (Attack.settings)
    pruned: str | None  # why a sweep pruned it
    config: dict[str, Any]  # the resolved config
