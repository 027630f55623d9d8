"""Report tables of published numbers beside ours, each cell in its own unit.

``reference.py`` says which of our numbers a cell is compared with and in which unit; this module
lays the cells out: one run (ours, the difference) or a sweep (mean ± s.e. over seeds, n). A %
cell is shown with two decimals in % / pp, a ``count`` as an integer, a ``value`` with three
decimals, so a parameter count is never printed as a percentage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import JsonValue

from labconsole.engine.records import Combination, MeanSE, RunSummary, validate_leniently
from labconsole.report.doc import MISSING, Section, Table, Text, is_number, pp
from labconsole.report.reference import (
    PERCENT_UNITS,
    ReferenceTable,
    no_tables_note,
    resolve_run,
    resolve_sweep,
    tables,
)

LARGE_RELATIVE_DIFFERENCE = 0.1  # a difference above 10 % of the published value stands out
LARGE_PP_DIFFERENCE = 5.0  # … and one of 5 pp or more in a % cell


def shown(table: ReferenceTable, row: str, col: str, value: float | None, *, signed: bool = False) -> str:
    """``value`` (already in the cell's shown unit) as text in that unit."""
    if value is None or not is_number(value):
        return MISSING
    unit = table.cell_unit(row, col)
    if unit in PERCENT_UNITS:
        return pp(value, 2, signed)
    sign = "+" if signed and value > 0 else ""
    if unit == "count":
        return f"{sign}{round(value):,}" if round(value) or not signed else "0"
    text = f"{value:.3f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2g}"
    return sign + text


def stats_text(table: ReferenceTable, row: str, col: str, stats: MeanSE | None) -> str:
    """'1.000 ± 0.000 (n=2)' in the cell's unit; one run has no s.e. and says so."""
    if stats is None or stats.mean is None:
        return MISSING
    se = shown(table, row, col, stats.se) if stats.se is not None else "n/a"
    return f"{shown(table, row, col, stats.mean)} ± {se} (n={stats.n})"


def _units_caption(table: ReferenceTable) -> str:
    kinds: list[str] = []
    for row, cols in table.rows.items():
        for col in cols:
            try:
                unit = table.cell_unit(row, col)
            except ValueError:
                continue
            text = {
                "count": "counts as they are",
                "value": "values as stored (no % scaling)",
                "fraction": "values in % / pp (paper fractions × 100)",
            }.get(unit, "values in % / pp" + (" (paper fractions × 100)" if unit == "" and table.scale == 100 else ""))
            if text not in kinds:
                kinds.append(text)
    return "; ".join(kinds)


def _caption(table: ReferenceTable) -> str:
    note, units = table.note.strip().rstrip("."), _units_caption(table)
    return f"{note}. {units[:1].upper()}{units[1:]}" if note and units else note or units


def _large(table: ReferenceTable, row: str, col: str, paper: float, diff: float | None) -> bool:
    if diff is None:
        return False
    if table.in_percent(row, col):
        return abs(diff) >= LARGE_PP_DIFFERENCE
    return bool(paper) and abs(diff) > LARGE_RELATIVE_DIFFERENCE * abs(paper)


def run_tables(
    reference: Mapping[str, JsonValue], summary: RunSummary, run_dir: Path, paper: str = "paper"
) -> list[Table]:
    """One table per reference table of a single run: ``paper`` (the publication's name), ours,
    the difference in the cell's unit, and where ours came from (or why it could not be read)."""
    out: list[Table] = []
    for table in tables(reference):
        rows: list[list[str]] = []
        emphasis: dict[tuple[int, int], str] = {}
        for row, cols in table.rows.items():
            for col, value in cols.items():
                name = row if col == "value" else f"{row} / {col}"
                try:
                    theirs = table.paper_shown(row, col, value)
                except ValueError as exc:
                    rows.append([name, str(value), MISSING, MISSING, str(exc)])
                    continue
                ours, where = resolve_run(summary, table, row, col, run_dir)
                if ours is not None and table.absolute:
                    ours = abs(ours)
                diff = ours - theirs if ours is not None else None
                if _large(table, row, col, theirs, diff):
                    emphasis[(len(rows), 3)] = "large"
                rows.append(
                    [
                        name,
                        shown(table, row, col, theirs),
                        shown(table, row, col, ours),
                        shown(table, row, col, diff, signed=True),
                        where,
                    ]
                )
        out.append(
            Table(
                ["row", paper, "ours", f"ours − {paper}", "ours from"],
                rows,
                title=table.label,
                caption=_caption(table),
                emphasis=emphasis,
            )
        )
    return out


def sweep_tables(
    reference: Mapping[str, JsonValue], combos: list[Combination], backbone: str, sweep_dir: Path
) -> list[Table]:
    """One table per reference table of a sweep: the paper's value, ours as mean ± s.e. over the
    seeds of the cell's combination, the difference of the means, and where ours came from."""
    out: list[Table] = []
    for table in tables(reference):
        body: list[list[str]] = []
        emphasis: dict[tuple[int, int], str] = {}
        for row, cols in table.rows.items():
            for col, value in cols.items():
                try:
                    theirs = table.paper_shown(row, col, value)
                except ValueError as exc:
                    body.append([row, col, str(value), MISSING, MISSING, str(exc)])
                    continue
                stats, where = resolve_sweep(combos, table, row, col, backbone, sweep_dir)
                mean = stats.mean if stats is not None else None
                diff = mean - theirs if mean is not None else None
                if _large(table, row, col, theirs, diff):
                    emphasis[(len(body), 4)] = "large"
                body.append(
                    [
                        row,
                        col,
                        shown(table, row, col, theirs),
                        stats_text(table, row, col, stats),
                        shown(table, row, col, diff, signed=True),
                        where,
                    ]
                )
        out.append(
            Table(
                columns=["row", "column", "paper", "ours (mean ± s.e., n)", "ours − paper", "ours from"],
                rows=body,
                title=table.label,
                caption=_caption(table),
                emphasis=emphasis,
            )
        )
    return out


def _summary(run_dir: Path) -> RunSummary:
    """The run's summary.json as far as it fits (summary-path cells read it); empty when absent."""
    try:
        data = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return RunSummary()
    return validate_leniently(RunSummary, data, "summary.json")[0]


def run_section(reference: Mapping[str, JsonValue], run_dir: Path, title: str, paper: str = "paper") -> Section:
    """The published-numbers section of the run at ``run_dir``; a preset without published
    numbers gets a sentence saying so (its ``[reference]`` ``_note``) instead of an empty table."""
    section = Section(title, anchor="reference")
    for table in run_tables(reference, _summary(run_dir), run_dir, paper):
        section.add(table)
    if not section.blocks:
        section.add(Text(no_tables_note(reference), kind="p"))
    return section
