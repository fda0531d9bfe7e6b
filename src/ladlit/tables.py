"""Result tables: markdown for files, rich for the terminal."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.table import Table

from ladlit.records import WORST


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """A GitHub markdown table; columns whose index is in `right` are right-aligned."""
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    lines = [header, rule, *([str(cell) for cell in row] for row in rows)]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines) + "\n"


def accuracy_table(rows: Mapping[str, float], title: str) -> Table:
    """A two-column rich table of accuracies."""
    table = Table(title=title)
    table.add_column("evaluation")
    table.add_column("accuracy", justify="right")
    for name, acc in rows.items():
        table.add_row("worst case (per example, every attack)" if name == WORST else name, f"{100 * acc:.2f}%")
    return table
