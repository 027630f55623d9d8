"""The readout's layer-matched control (``SessionPort.matched_control``, which returns the
readout with it): its table cells (mean ± sd over the draws and p per split and group) and the
memorization-signature verdict line.

The control's numbers come as its draws are walked: over the first few (provisional, shown ≈
and dim; with N draws p cannot go below 1/(N + 1)), over more of them, then over all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import DataTable

from labconsole.ui.widgets.readout_table import COLUMNS, Row, exact_rows
from labconsole.ui.widgets.table_columns import add_sized_columns

if TYPE_CHECKING:  # pydantic records, imported where one is built (after the first paint)
    from labconsole.engine.records import Evidence, Readout

MATCHED_COLUMNS = (*COLUMNS[:-1], "matched Δ pp", "p")
SIGNIFICANCE = 0.05  # the engine's (``engine.stage1.evidence.SIGNIFICANCE``)
DRAWS = 20
FIRST_DRAWS = 3


def p_cell(p: float | None, provisional: bool) -> Text:
    if p is None:
        return Text("…" if provisional else "–", style="dim")
    if provisional:
        return Text(f"≈{p:.2f}", style="dim")
    return Text(f"{p:.3f}", style="bold" if p < SIGNIFICANCE else "")


def control_text(delta: float | None, spread: float | None, provisional: bool) -> Text:
    if delta is None:
        return Text("…" if provisional else "–", style="dim")
    return Text(("≈" if provisional else "") + f"{delta:+.2f}±{spread or 0:.2f}", style="dim")


def matched_rows(result: Readout, groups: Sequence[str], minority: set[str], provisional: bool = False) -> list[Row]:
    """The readout's rows with its matched control and p in the last two columns; ``…`` while
    the first draws are computed, ≈ while they are all there is."""
    rows = exact_rows(result, groups, minority)
    found = result.evidence
    waiting = provisional or found is None
    out: list[Row] = []
    for row, (split, group) in zip(rows, [(s, g) for s in ("train", "test") for g in groups]):
        control = result.control_split(split) if found is not None else None
        delta = control.delta_pp.get(group) if control is not None else None
        spread = control.spread_pp.get(group) if control is not None else None
        p = (found.p.get(split) or {}).get(group) if found is not None else None
        out.append((*row[:-1], control_text(delta, spread, waiting), p_cell(p, waiting)))
    return out


def verdict_line(found: Evidence, groups: Sequence[str], minority: set[str], provisional: bool) -> str:
    """The engine's verdict on the signature Δtrain − Δtest per group (its numbers: the value
    and p against the draws' own Δtrain − Δtest); the numbers of the groups where it was seen
    and of the minority groups."""
    signature = found.signature
    draws = int(found.draws or 0)
    if signature is None:
        return "memorization signature: needs train and test"
    seen = [g for g in groups if signature.verdict.get(g) == "seen"]

    def numbers(group: str) -> str:
        value, p = signature.critical_pp.get(group), signature.p.get(group)
        if value is None or p is None:
            return f"{group} –"
        return f"{group} {value:+.1f} pp p={p:.2f}" if provisional else f"{group} {value:+.1f} pp p={p:.3f}"

    unseen = [g for g in groups if g in minority and g not in seen]
    parts = [f"seen for {', '.join(numbers(g) for g in seen)}"] if seen else []
    if unseen:
        parts.append(f"not seen for {', '.join(numbers(g) for g in unseen)}")
    head = f"signature Δtrain−Δtest < 0 at p < {SIGNIFICANCE:g}, {draws} draws: "
    text = "; ".join(parts) if parts else "not seen for any group"
    if provisional:
        return head + text + f" (provisional: {draws} draws give p ≥ {1 / (draws + 1):.2f})"
    return head + text


def show_matched_rows(table: DataTable[str | Text], rows: Sequence[Row]) -> None:
    """The rows under the matched control's column heads (columns made again, sized to them)."""
    table.clear(columns=True)
    # Widths from the cells themselves: a table re-made twice within one refresh (provisional,
    # then more draws) could otherwise keep header-wide columns and cut its numbers.
    add_sized_columns(table, MATCHED_COLUMNS, rows)
    for row in rows:
        table.add_row(*row)
