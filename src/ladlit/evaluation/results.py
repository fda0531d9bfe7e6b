"""The evaluation record beside a checkpoint (metrics.json, metrics.md): every evaluation adds
its results under a key of what makes them comparable, and never erases another's."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ladlit.attacks import WORST
from ladlit.locks import record_lock
from ladlit.records import read_json, write_json
from ladlit.tables import markdown_table


def worst_name(attacks: list[str]) -> str:
    """How the per-example worst case over `attacks` is shown and reported: e.g. `worst(pgd20+cw)`."""
    return f"{WORST}({'+'.join(attacks)})" if attacks else WORST


def evaluation_key(checkpoint: str, kind: str, eps: float | None, n_examples: int) -> str:
    """e.g. "best.ckpt | pgd20+cw | eps=8/255 | n=5000": checkpoint, what was measured, eps, n."""
    eps_text = "-" if eps is None else f"{eps * 255:.4g}/255"
    return f"{checkpoint} | {kind} | eps={eps_text} | n={n_examples}"


def add_evaluations(path: Path, run: Mapping[str, Any], entries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Merge `entries` (key -> result) into the record at `path`; a key measured again is replaced,
    every other key is kept. An unreadable record is kept aside as metrics.json.corrupt. Other
    processes merging into the same record wait for each other (`locks.record_lock`)."""
    with record_lock(path):
        return _merge_evaluations(path, run, entries)


def _merge_evaluations(path: Path, run: Mapping[str, Any], entries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    record = read_json(path) if path.exists() else {}
    if record is None:
        os.replace(path, path.with_suffix(".json.corrupt"))
        record = {}
    if "evaluations" not in record:  # nothing, or a record written before evaluations accumulated
        record = {"evaluations": {}}
    record["run"] = dict(run) or record.get("run", {})
    record["evaluations"].update({k: dict(v) for k, v in entries.items()})
    write_json(path, record)
    path.with_suffix(".md").write_text(markdown_report(record))
    return record


def markdown_report(record: Mapping[str, Any]) -> str:
    """metrics.md: every number with its checkpoint, eps and number of examples."""
    rows, extras = [], []
    for key, entry in sorted(record.get("evaluations", {}).items()):
        eps = entry.get("eps")
        eps_text = "-" if eps is None else f"{eps * 255:.4g}/255"
        for attack, acc in (entry.get("accuracy") or {}).items():
            seconds = (entry.get("seconds") or {}).get(attack)
            rows.append(
                (
                    entry.get("checkpoint", "?"),
                    worst_name(entry.get("worst_of") or []) if attack == WORST else attack,
                    eps_text,
                    entry.get("n_examples", "?"),
                    f"{100 * acc:.2f}",
                    "-" if seconds is None else f"{seconds:.0f}",
                    entry.get("date", "-"),
                )
            )
        if entry.get("eps_sweep"):
            sweep = ", ".join(
                f"{float(e) * 255:.0f}/255: {100 * a:.1f}%"
                for e, a in sorted(entry["eps_sweep"].items(), key=lambda kv: float(kv[0]))
            )
            extras.append(f"PGD-20 accuracy vs eps ({key}): {sweep}\n")
        if entry.get("sanity"):
            checks = [(c["name"], "pass" if c["passed"] else "**FAIL**", c["detail"]) for c in entry["sanity"]]
            extras.append(
                f"## Gradient-masking checks ({key})\n\n" + markdown_table(["check", "result", "figures"], checks)
            )
        if entry.get("label_leak"):
            leak = entry["label_leak"]
            extras.append(
                f"## Label leak ({key}): the defense's training forward on {entry.get('n_examples', '?')} test images\n\n"
                + markdown_table(
                    [
                        "clean (%)",
                        "true label: predicts it",
                        "label shifted: predicts the true one",
                        "label shifted: predicts the shifted one",
                    ],
                    [
                        tuple(
                            f"{100 * leak[k]:.1f}"
                            for k in ("clean", "true_given_true", "true_given_shifted", "shifted_given_shifted")
                        )
                    ],
                    right=range(4),
                )
            )
        if entry.get("layer_profile"):
            profile = entry["layer_profile"]
            sizes = list(next(iter(profile.values())))
            table = [(block, *(f"{100 * accs[r]:.1f}" for r in sizes)) for block, accs in profile.items()]
            extras.append(
                f"## Layer profile ({key}): accuracy (%) with one block's output pushed along its adjoint, relative size r\n\n"
                + markdown_table(["block", *(f"r={r}" for r in sizes)], table, right=range(1, len(sizes) + 1))
            )
    head = markdown_table(
        ["checkpoint", "evaluation", "eps", "n", "accuracy (%)", "seconds", "date"], rows, right=(3, 4, 5)
    )
    return "\n".join([head, *extras])
