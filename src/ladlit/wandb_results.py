"""Evaluation results and cross-run comparisons in W&B, beside the records on disk.

`ladlit.eval` adds what it measured to the W&B run of the run it evaluates: training's own,
resumed by the id W&B stored in the run directory, so the dashboard that shows a run's
validation curves also shows the numbers a paper reports. `ladlit.report --wandb` puts one
table comparing a sweep's runs into the sweep's W&B group. Offline without an API key, as
training is (`ladlit.loggers.wandb_offline`); `wandb sync <run>/wandb` uploads later
(docs/wandb.md). wandb is imported only when something goes to W&B.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ladlit.loggers import wandb_offline, wandb_tags
from ladlit.records import SELECTS_CHECKPOINT, best_epoch, read_json
from ladlit.runs import describe_run

PREFIX = "eval"  # the W&B section of everything `ladlit.eval` adds
PROJECT = "ladlit"  # conf/logger/wandb.yaml's, for runs whose config names none
TABLES = ("eps_sweep", "layer_profile", "sanity")  # the evaluations W&B gets as tables (`tables`)


def log_evaluations(
    logger: Mapping[str, Any] | None,
    checkpoint: Path,
    run_config: Mapping[str, Any],
    entries: Mapping[str, Mapping[str, Any]],
) -> Path | None:
    """Add `entries` (evaluation key -> record entry) to the W&B run stored beside `checkpoint`'s
    run, or to a new one where `logger` (eval's `logger=`) asks for W&B and there is none.
    `logger=null` follows the run (W&B if it was trained with it), a logger without W&B
    (`logger=csv`) sends nothing. Returns the W&B run's local directory, None when nothing was sent."""
    node = next((n for n in (logger or {}).values() if "WandbLogger" in str((n or {}).get("_target_", ""))), None)
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    run_id = stored_run_id(run_dir)
    if (logger is not None and node is None) or (node is None and run_id is None):
        return None
    import wandb

    trained = (run_config.get("logger") or {}).get("wandb") or {}  # the run's own project wins: its id lives there
    new = {} if run_id else {"name": run_config.get("name") or run_dir.name, "config": dict(run_config)}
    if not run_id and run_config:
        new["tags"] = wandb_tags(describe_run(run_config))
    with wandb.init(
        project=trained.get("project") or (node or {}).get("project") or PROJECT,
        entity=trained.get("entity") or (node or {}).get("entity"),
        group=None if run_id else (node or {}).get("group") or new["name"],
        id=run_id,
        resume="allow" if run_id else None,
        dir=str(run_dir),
        mode="offline" if _offline(node) else "online",
        **new,
    ) as run:
        run.summary.update(summary_values(entries))
        charts = dict(tables(entries))
        if charts:
            run.log(charts)
        return Path(run.dir).parent


def stored_run_id(run_dir: Path) -> str | None:
    """The id of the latest W&B run in `run_dir/wandb` (training's WandbLogger writes it there as
    [offline-]run-<time>-<id>/run-<id>.wandb), or None."""
    logs = sorted(run_dir.glob("wandb/*run-*/run-*.wandb"), key=lambda f: f.parent.name.removeprefix("offline-"))
    return logs[-1].stem.removeprefix("run-") if logs else None


def metric_name(key: str) -> str:
    """A W&B-safe name of an evaluation key (letters, digits, underscores: the names W&B sorts and
    filters by): "best.ckpt | fgsm+pgd20 | eps=8/255 | n=1000" -> "eval/best_fgsm_pgd20_eps8_255_n1000"."""
    checkpoint, kind, eps, n = (key.split(" | ") + ["", "", ""])[:4]
    parts = [Path(checkpoint).stem, kind, "" if eps in ("eps=-", "") else eps.replace("=", ""), n.replace("=", "")]
    return f"{PREFIX}/" + re.sub(r"[^A-Za-z0-9]+", "_", "_".join(p for p in parts if p)).strip("_")


def summary_values(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Per evaluation key: clean, each attack's and the worst-case accuracy; the checklist's failed
    checks; the numbers of an evaluation not drawn as a table (the label-leak probe, or a new one)
    whose result is a flat mapping of numbers."""
    values = {}
    for key, entry in entries.items():
        name, kind, result = metric_name(key), _kind(key), _result(key, entry)
        values.update({f"{name}/{attack}": float(acc) for attack, acc in (entry.get("accuracy") or {}).items()})
        if kind == "sanity":
            values[f"{name}/failed"] = float(sum(not check["passed"] for check in result))
        elif kind not in TABLES and isinstance(result, Mapping) and all(_number(v) for v in result.values()):
            values.update({f"{name}/{k}": float(v) for k, v in result.items()})
    return values


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def tables(entries: Mapping[str, Mapping[str, Any]]) -> Iterator[tuple[str, Any]]:
    """W&B tables: the eps sweep and the layer profile as line plots over their table (W&B keeps
    the table under `<name>_table`), the gradient-masking checklist as a table."""
    import wandb

    for key, entry in entries.items():
        name, kind, result = metric_name(key), _kind(key), _result(key, entry)
        if kind == "eps_sweep":
            rows = sorted((float(e), float(e) * 255, float(a)) for e, a in result.items())
            table = wandb.Table(columns=["eps", "eps_255", "accuracy"], data=[list(r) for r in rows])
            yield name, wandb.plot.line(table, "eps_255", "accuracy", title=f"PGD-20 accuracy vs eps x 255 ({key})")
        elif kind == "layer_profile":
            rows = [[block, float(r), float(a)] for block, accs in result.items() for r, a in accs.items()]
            table = wandb.Table(columns=["block", "r", "accuracy"], data=rows)
            title = f"accuracy with one block's output pushed along its adjoint, relative size r ({key})"
            yield name, wandb.plot.line(table, "r", "accuracy", stroke="block", title=title)
        elif kind == "sanity":
            rows = [[c["name"], bool(c["passed"]), c["detail"]] for c in result]
            yield name, wandb.Table(columns=["check", "passed", "figures"], data=rows)


def _kind(key: str) -> str:
    parts = key.split(" | ")
    return parts[1] if len(parts) > 1 else ""


def _result(key: str, entry: Mapping[str, Any]) -> Any:
    """An extra evaluation's result: under its name, which is the key's kind."""
    return entry.get(_kind(key))


def _offline(node: Mapping[str, Any] | None) -> bool:
    offline = (node or {}).get("offline")
    return wandb_offline() if offline is None else bool(offline)


# --- the comparison of a sweep's runs (`ladlit.report --wandb`) ---------------------------------


def log_report(runs: list[Any], group: str, out: Path) -> Path:
    """Two tables in W&B group `group`: `report/runs`, a row per run (`ladlit.reporting.Run`): its
    settings that differ between the runs, seed, best robust validation accuracy, and every test
    and evaluation number, named by attack, checkpoint, n and eps; and `report/settings`, the rows
    `ladlit.report` writes (`settings_table`). Logged by one report run per group (a fixed id,
    so reporting again replaces the table); returns its local directory."""
    import wandb

    from ladlit.reporting.aggregate import differing_keys

    keys = ["method", *(k for k in differing_keys([r.setting for r in runs]) if k != "method")]
    measured = sorted({m for r in runs for m in r.measurements}, key=str)
    columns = ["run", *keys, "seed", f"best {SELECTS_CHECKPOINT}", *(_measurement(m) for m in measured)]
    rows = []
    for run in runs:
        best = best_epoch(run.history)
        rows.append(
            [
                run.path.name,
                *(_cell(run.setting.get(k)) for k in keys),
                _cell(run.seed),
                None if best is None else best[SELECTS_CHECKPOINT],
                *(run.measurements.get(m) for m in measured),
            ]
        )
    project = next((p for r in runs if (p := _project(r.path))), PROJECT)
    run_id = "report-" + hashlib.sha1(f"{project}/{group}".encode()).hexdigest()[:12]
    out.mkdir(parents=True, exist_ok=True)
    with wandb.init(
        project=project,
        group=group,
        job_type="report",
        name=f"report {group}",
        id=run_id,
        resume="allow",
        dir=str(out),
        mode="offline" if wandb_offline() else "online",
    ) as run:
        run.log(
            {
                "report/runs": wandb.Table(columns=columns, data=rows, allow_mixed_types=True),
                "report/settings": settings_table(runs),
            }
        )
        return Path(run.dir).parent


def settings_table(runs: list[Any]) -> Any:
    """The rows `ladlit.report` writes (one comparable setting: defense, checkpoint, n, eps), each
    attack's mean and standard deviation over the seeds and the number of seeds."""
    import wandb

    from ladlit.reporting.aggregate import columns as attack_columns
    from ladlit.reporting.aggregate import differing_keys, label, summarize

    rows = summarize(runs)
    keys = differing_keys([r.defense for r in rows])
    attacks = attack_columns(rows)
    head = [
        "defense",
        "checkpoint",
        "n",
        "eps_255",
        *(f"{a} {stat}" for a in attacks for stat in ("mean", "std")),
        "seeds",
    ]
    data = []
    for row in rows:
        cells = [row.cell(a) for a in attacks]
        stats = [v for cell in cells for v in ((cell[0], cell[1]) if cell else (None, None))]
        data.append([label(row.defense, keys), row.checkpoint, row.n, row.eps * 255, *stats, row.seeds])
    return wandb.Table(columns=head, data=data, allow_mixed_types=True)


def _measurement(measured: tuple[str, int, float, str]) -> str:
    checkpoint, n, eps, attack = measured
    return f"{attack} ({checkpoint}, n={n}, eps={eps * 255:.4g}/255)"


def _cell(value: Any) -> Any:
    """A table cell: numbers, text and None as they are, anything else (a list) as text."""
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def _project(run_dir: Path) -> str | None:
    """The W&B project a run was trained into, from the config in its metrics.json."""
    config = (read_json(run_dir / "metrics.json") or {}).get("config") or {}
    return ((config.get("logger") or {}).get("wandb") or {}).get("project")
