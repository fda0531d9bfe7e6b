"""The report's files: report.md (a table per context, then paired differences), report.csv,
attacks.png and eps_sweep.png, from the rows `ladlit.reporting.aggregate` makes."""

from __future__ import annotations

import csv
from pathlib import Path

from ladlit.reporting.aggregate import (
    Row,
    columns,
    context_keys,
    differing_keys,
    is_reference,
    label,
    paired_difference,
    same_examples,
    tables_by_context,
)
from ladlit.tables import markdown_table

HEADLINE = ["choices.experiment", "choices.dataset", "choices.model", "dataset.train_subset", "trainer.max_epochs"]


def _pct(cell: tuple[float, float | None, int] | None, plus: bool = False) -> str:
    if cell is None:
        return "-"
    mean, spread, _ = cell
    text = f"{100 * mean:+.2f}" if plus else f"{100 * mean:.2f}"
    return text if spread is None else f"{text} ± {100 * spread:.2f}"


INTRO = (
    "# Results\n\nAccuracy (%) on the test set: mean ± std over distinct seeds (one seed: no ±); "
    "`n` is the number of test examples each number was measured on.\n"
)
CSV_HEADER = [
    "context",
    "defense",
    "checkpoint",
    "n",
    "eps",
    "seeds",
    "cells (mean;std;seeds)...",
    "paired differences (mean;se;pairs)...",
    "columns",
    "paired with",
]


def write_report(rows: list[Row], out: Path, reference: dict[str, str] | None) -> str:
    """report.md (a table per context, then paired differences) and report.csv; returns the markdown."""
    grouped = tables_by_context(rows)
    keys = context_keys([group[0].context for group in grouped.values()])
    parts, csv_rows = [INTRO], []
    for group in grouped.values():
        heading = label(group[0].context, keys or [k for k in HEADLINE if k in group[0].context])
        section, lines = _context_section(group, heading, reference)
        parts.append(section)
        csv_rows += lines
    markdown = "\n".join(parts)
    (out / "report.md").write_text(markdown)
    with open(out / "report.csv", "w", newline="") as f:
        csv.writer(f).writerows([CSV_HEADER, *csv_rows])
    return markdown


def _context_section(group: list[Row], heading: str, reference: dict[str, str] | None) -> tuple[str, list[list]]:
    """One context's markdown (accuracy table, paired differences) and its CSV lines."""
    cols = columns(group)
    # the method names the defense classes, so a differing `_target_` would only repeat it
    keys = [k for k in differing_keys([r.defense for r in group]) if not k.endswith("_target_")] or ["method"]
    right = range(2, 4 + len(cols))
    body = [(label(r.defense, keys), r.checkpoint, r.n, r.seeds, *(_pct(r.cell(c)) for c in cols)) for r in group]
    parts = [
        f"## {heading}  (eps = {group[0].eps * 255:.4g}/255)\n",
        markdown_table(["defense", "checkpoint", "n", "seeds", *cols], body, right),
    ]
    diffs, csv_rows, unpaired, paired_with = [], [], [], []
    for r in group:
        ref = _reference_for(r, group, reference)
        ref_name = label(ref.defense, keys) if ref else ""
        cells = [paired_difference(r, ref, c) if ref else None for c in cols]
        unpaired += [
            f"{label(r.defense, keys)} {r.checkpoint} {c}" for c in cols if ref and not same_examples(r, ref, c)
        ]
        csv_rows.append(
            [
                heading,
                label(r.defense, keys),
                r.checkpoint,
                r.n,
                r.eps,
                r.seeds,
                *(_csv(r.cell(c)) for c in cols),
                *(_csv(d) for d in cells),
                ",".join(cols),
                ref_name,
            ]
        )
        if any(cells):
            paired_with.append(ref_name)
            diffs.append(
                (
                    label(r.defense, keys),
                    r.checkpoint,
                    r.n,
                    max(d[2] for d in cells if d),
                    *(_pct(d, plus=True) for d in cells),
                )
            )
    if diffs:
        parts.append(_difference_table(diffs, paired_with, cols, right))
    if unpaired:
        parts.append(f"\nNot paired, measured on other examples than the reference: {'; '.join(unpaired)}.\n")
    return "\n".join(parts) + "\n", csv_rows


def _difference_table(diffs: list[tuple], paired_with: list[str], cols: list[str], right: range) -> str:
    """The paired differences, under one reference's name, or with a column naming each row's
    reference when a table holds more than one (LAD on FGSM-RS and on PGD-AT)."""
    header = ["defense", "checkpoint", "n", "pairs", *cols]
    what = "(same seed, same checkpoint and n), in points: mean ± standard error over seeds."
    if len(set(paired_with)) == 1:
        title = f"\nPaired difference to {paired_with[0]} {what}\n"
        return title + "\n" + markdown_table(header, diffs, right)
    rows = [(*d[:4], ref, *d[4:]) for d, ref in zip(diffs, paired_with)]
    title = f"\nPaired difference to each row's reference, its base defense alone {what}\n"
    return title + "\n" + markdown_table([*header[:4], "paired with", *cols], rows, [2, 3, *range(5, 5 + len(cols))])


def _reference_for(row: Row, group: list[Row], reference: dict[str, str] | None) -> Row | None:
    """The reference row measured like `row` (same checkpoint and n), if it is not `row` itself."""
    same = [
        o
        for o in group
        if o is not row and is_reference(o, row, reference) and (o.checkpoint, o.n) == (row.checkpoint, row.n)
    ]
    return same[0] if same else None


def _csv(cell: tuple[float, float | None, int] | None) -> str:
    if cell is None:
        return ""
    mean, spread, k = cell
    return f"{mean:.6f};{'' if spread is None else f'{spread:.6f}'};{k}"


def plot(rows: list[Row], runs: list, out: Path) -> list[Path]:
    """attacks.png (bars per row and attack) and eps_sweep.png (PGD-20 accuracy vs eps, per run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = [path for path in (_plot_eps_sweep(plt, runs, out), _plot_attacks(plt, rows, out)) if path]
    plt.close("all")
    return written


def _plot_eps_sweep(plt, runs: list, out: Path) -> Path | None:
    swept = [(run, ckpt, sweep) for run in runs for ckpt, sweep in run.eps_sweeps.items()]
    if not swept:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for run, ckpt, sweep in swept:
        eps = sorted(sweep)
        ax.plot(
            [e * 255 for e in eps],
            [100 * sweep[e] for e in eps],
            marker="o",
            label=f"{run.setting.get('method')} seed {run.seed} ({ckpt})",
        )
    ax.set(xlabel="eps (x/255)", ylabel="PGD-20 accuracy (%)", title="Robust accuracy vs eps", ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "eps_sweep.png", dpi=120)
    return out / "eps_sweep.png"


def _plot_attacks(plt, rows: list[Row], out: Path) -> Path:
    cols, keys = columns(rows), differing_keys([r.defense for r in rows]) or ["method"]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows) + 2), 4))
    width = 0.8 / max(len(cols), 1)
    for j, col in enumerate(cols):
        cells = [(i, r.cell(col)) for i, r in enumerate(rows) if r.cell(col)]
        if cells:
            heights, errors = [100 * c[0] for _, c in cells], [100 * (c[1] or 0) for _, c in cells]
            ax.bar([i + j * width for i, _ in cells], heights, width, yerr=errors, label=col, capsize=2)
    ticks = [f"{label(r.defense, keys)}\n{r.checkpoint} n={r.n}" for r in rows]
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], ticks, rotation=20, ha="right", fontsize=7)
    ax.set(ylabel="accuracy (%)", ylim=(0, 100), title="Accuracy per attack")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "attacks.png", dpi=120)
    return out / "attacks.png"
