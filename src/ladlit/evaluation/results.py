"""The evaluation record beside a checkpoint (metrics.json, metrics.md): every evaluation adds
its results under a key of what makes them comparable, and never erases another's."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ladlit.evaluation.extra import render
from ladlit.locks import record_lock
from ladlit.records import WORST, read_json, worst_name, write_json
from ladlit.runs import canonical_run
from ladlit.tables import markdown_table


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
    record["run"] = dict(run) or canonical_run(record.get("run", {}))
    record["evaluations"].update({k: dict(v) for k, v in entries.items()})
    write_json(path, record)
    path.with_suffix(".md").write_text(record_markdown(record))
    return record


def record_markdown(record: Mapping[str, Any]) -> str:
    """metrics.md: every number with its checkpoint, eps and number of examples, then a section
    per extra evaluation (rendered by its own class, `ladlit.evaluation.extra`)."""
    rows, sections = [], []
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
        section = render(key, entry)
        if section:
            sections.append(section)
    head = markdown_table(
        ["checkpoint", "evaluation", "eps", "n", "accuracy (%)", "seconds", "date"], rows, right=(3, 4, 5)
    )
    return "\n".join([head, *sections])
