"""`python -m ladlit.report <run dirs or multirun dirs> [--out DIR]`

One table across runs, like a paper's: rows are base defense x scheme x dataset (x model, eta),
columns clean / FGSM / PGD-20 / CW / AutoAttack accuracy as mean +- std over seeds. Reads the
`metrics.json` that `ladlit.train` (test metrics) and `ladlit.eval` (all attacks) write, and
draws accuracy-vs-eps curves and per-attack bars. Writes report.md, report.csv and PNGs.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

COLUMNS = ["clean", "fgsm", "pgd20", "cw", "autoattack"]
GROUP_KEYS = ["base", "scheme", "eta", "dataset", "model"]


def collect(paths: list[Path]) -> list[dict[str, Any]]:
    """One record per run: its labels, accuracies (eval's over train's) and eps sweep."""
    runs: dict[Path, dict[str, Any]] = {}
    for path in paths:
        for file in sorted(Path(path).rglob("metrics.json")):
            data = json.loads(file.read_text())
            if "accuracy" in data:  # written by ladlit.eval beside a checkpoint
                run_dir = file.parent.parent if file.parent.name == "checkpoints" else file.parent
                acc, sweep = data["accuracy"], data.get("eps_sweep")
            elif "test/acc_clean" in data:  # written by ladlit.train
                run_dir, sweep = file.parent, None
                acc = {k.removeprefix("test/acc_"): v for k, v in data.items() if k.startswith("test/acc_")}
            else:
                continue
            record = runs.setdefault(run_dir, {"dir": str(run_dir), "run": {}, "accuracy": {}, "eps_sweep": None})
            record["run"] = data.get("run") or record["run"]
            record["accuracy"].update(acc)
            record["eps_sweep"] = sweep or record["eps_sweep"]
    return list(runs.values())


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped by GROUP_KEYS; each column is (mean, std, n) over the group's seeds."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[tuple(str(r["run"].get(k, "?")) for k in GROUP_KEYS)].append(r)
    rows = []
    for key, members in sorted(groups.items()):
        row: dict[str, Any] = dict(zip(GROUP_KEYS, key), seeds=len(members))
        for col in COLUMNS:
            values = [100 * m["accuracy"][col] for m in members if col in m["accuracy"]]
            row[col] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values)) if values else None
        rows.append(row)
    return rows


def _cell(value: tuple[float, float, int] | None) -> str:
    if value is None:
        return "-"
    mean, std, n = value
    return f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f}"


def write_tables(rows: list[dict[str, Any]], out: Path) -> None:
    header = [*GROUP_KEYS, "seeds", *COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(GROUP_KEYS) + "---:|" * (1 + len(COLUMNS))]
    lines += ["| " + " | ".join([*(str(r[k]) for k in GROUP_KEYS), str(r["seeds"]), *(_cell(r[c]) for c in COLUMNS)]) + " |" for r in rows]
    (out / "report.md").write_text("Accuracy (%) on the test set, mean ± std over seeds.\n\n" + "\n".join(lines) + "\n")
    with open(out / "report.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*GROUP_KEYS, "seeds", *(f"{c}_{s}" for c in COLUMNS for s in ("mean", "std"))])
        for r in rows:
            stats = [v for c in COLUMNS for v in ((r[c][0], r[c][1]) if r[c] else ("", ""))]
            writer.writerow([*(r[k] for k in GROUP_KEYS), r["seeds"], *stats])


def _label(row_or_run: dict[str, Any]) -> str:
    scheme = "" if row_or_run.get("scheme") in ("-", None) else f"+{row_or_run['scheme']}"
    return f"{row_or_run.get('base')}{scheme} ({row_or_run.get('dataset')})"


def plot(records: list[dict[str, Any]], rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """eps_sweep.png (accuracy vs eps, one curve per run) and attacks.png (bars per attack)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    swept = [r for r in records if r["eps_sweep"]]
    if swept:
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in swept:
            eps = sorted(r["eps_sweep"], key=float)
            ax.plot([float(e) * 255 for e in eps], [100 * r["eps_sweep"][e] for e in eps], marker="o", label=f"{_label(r['run'])} seed {r['run'].get('seed')}")
        ax.set(xlabel="eps (x/255)", ylabel="PGD-20 accuracy (%)", title="Robust accuracy vs eps", ylim=(0, 100))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "eps_sweep.png", dpi=120)
        written.append(out / "eps_sweep.png")
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows) + 2), 4))
    width = 0.8 / len(COLUMNS)
    for j, col in enumerate(COLUMNS):
        xs = [i + j * width for i, r in enumerate(rows) if r[col]]
        means = [r[col][0] for r in rows if r[col]]
        stds = [r[col][1] for r in rows if r[col]]
        if xs:
            ax.bar(xs, means, width, yerr=stds, label=col, capsize=2)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], [_label(r) for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set(ylabel="accuracy (%)", ylim=(0, 100), title="Accuracy per attack")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "attacks.png", dpi=120)
    written.append(out / "attacks.png")
    plt.close("all")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ladlit.report", description="Table and plots across runs.")
    parser.add_argument("runs", nargs="+", type=Path, help="run directories, multirun directories or any folder above them")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the first path)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.runs if not p.exists()]
    if missing:
        parser.error(f"no such directory: {', '.join(missing)}")
    records = collect(args.runs)
    if not records:
        parser.error("no metrics.json found: train runs write one, `python -m ladlit.eval ckpt=<run>` another")
    out = args.out or args.runs[0]
    out.mkdir(parents=True, exist_ok=True)
    rows = summarize(records)
    write_tables(rows, out)
    plots = plot(records, rows, out)
    print((out / "report.md").read_text())
    print(f"{len(records)} runs -> {out / 'report.md'}, {out / 'report.csv'}, " + ", ".join(str(p) for p in plots))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
