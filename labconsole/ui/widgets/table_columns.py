"""Columns of a ``DataTable`` sized to their cells when they are made.

A column added without a width takes its label's width and widens to its cells only on the
table's next idle, once it has measured them. A table whose columns are made again (a new
header, a newer result) and drawn or read before that idle shows its cells cut to the labels'
widths. Giving each column the width of its widest cell (or label) when it is added removes
that wait."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable


def cell_width(cell: str | Text) -> int:
    """The columns ``cell`` takes: its widest line."""
    plain = cell.plain if isinstance(cell, Text) else str(cell)
    return max(cell_len(line) for line in plain.split("\n"))


def add_sized_columns(
    table: DataTable[str | Text], labels: Sequence[str], rows: Sequence[Sequence[str | Text]]
) -> None:
    """Add a column per label to ``table``, each as wide as its label or its widest cell in
    ``rows`` (the rows the caller adds next)."""
    for i, label in enumerate(labels):
        width = max([cell_len(label)] + [cell_width(row[i]) for row in rows if i < len(row)])
        table.add_column(label, width=width)
