"""The Interventions readout: one entry per readout, and its table rows per split × group
(accuracy before → after, the change, the random control's mean ± sd).

A progressive estimate (≈ with its 95 % interval) is wider than the exact numbers; where it
would not fit the pane, its interval goes on a second line of the cell: every number stays
whole at 80×24."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import DataTable

from labconsole.formatting import pct as percent
from labconsole.ui.engine_port import NeuronRef

if TYPE_CHECKING:  # pydantic records, imported where a record is read (after the first paint)
    from labconsole.engine.records import ConsoleReadout, Readout, ReadoutSplit

SPLITS = ("train", "test")
COLUMNS = ("split", "group", "role", "acc. %", "Δ pp", "random Δ pp")
Row = tuple[str | Text, ...]


@dataclass(frozen=True)
class ReadoutEntry:
    neurons: tuple[NeuronRef, ...]
    mode: str
    sigma: float
    seeds: int
    result: Readout
    seq: int | None = None  # its line in the session record, once written

    def worst_delta(self, split: str, part: str = "splits") -> float | None:
        """The most negative change on ``split`` of the readout (``part`` "splits") or of its
        control ("control"); a group absent from a split has None."""
        data = self.result.split(split) if part == "splits" else self.result.control_split(split)
        return data.worst_delta() if data is not None else None

    @property
    def edit(self) -> str:
        return self.mode if self.mode == "zero" else f"{self.mode} σ{self.sigma:g} ×{self.seeds}"

    @classmethod
    def from_record(cls, line: Mapping[str, object]) -> ReadoutEntry | None:
        """A readout line of the session record (``records.ConsoleReadout``) → an entry; None
        for a line that is not a readout with numbers."""
        from pydantic import ValidationError

        from labconsole.engine.records import ConsoleReadout

        if not isinstance(line.get("readout"), dict):
            return None
        try:
            record = ConsoleReadout.model_validate(dict(line))
        except ValidationError:
            return None
        readout = record.readout
        if not readout.splits:
            return None
        std = record.std if "std" in record.model_fields_set else readout.std
        return cls(
            tuple((str(n[0]), int(n[1])) for n in readout.neurons),
            readout.mode,
            float(std) if std is not None else 0.0,
            int(record.seeds if "seeds" in record.model_fields_set and record.seeds else readout.seeds or 1),
            readout,
            record.seq,
        )

    def console_readout(self, ranking: Mapping[str, Any] | None) -> ConsoleReadout:
        """The session record's line for this readout (``from_record`` reads it back): the
        engine's readout with the edit asked for, and the ranking the neurons came from when
        they all came from ``ranking`` (the latest one)."""
        from labconsole.engine.records import ConsoleReadout, Readout

        readout = Readout.model_validate(
            {
                "mode": self.mode,
                "std": None if self.mode == "zero" else self.sigma,
                "seeds": self.seeds,
                "neurons": [list(n) for n in self.neurons],
                **self.result.model_dump(exclude_unset=True),  # the engine's own fields win
            }
        )
        ranked = bool(ranking) and set(self.neurons) <= set((ranking or {}).get("neurons", ()))
        found = ranking if ranking is not None and ranked else {}
        return ConsoleReadout(
            criterion=found.get("criterion"),
            ranked_group=found.get("group"),
            scope=found.get("scope"),
            k=found.get("k"),
            score=found.get("score"),  # which ranking score chose them
            std=None if self.mode == "zero" else self.sigma,
            seeds=self.seeds,
            readout=readout,
        )


def readout_note(entry: ReadoutEntry) -> str:
    """The line under a readout: the control it has (layer-matched, random, none) and what one
    image is worth in each split (the matched control's verdict goes on the next line)."""
    result = entry.result
    if result.evidence is not None:
        parts = [
            f"matched Δ: as many neurons from each layer, mean ± sd over {result.evidence.draws} draws · f flipped examples"
        ]
    elif result.control:
        draws = len(result.control_neurons)
        parts = [f"random Δ: as many random neurons, mean ± sd over {f'{draws} ' if draws else ''}draws"]
    else:
        parts = ["no random control (choose + random control)"]
    quantum = result.wga_quantum_pp
    if any(q is not None for q in quantum.values()):
        parts.append("one image = " + ", ".join(f"{s} {q:.2f} pp" for s, q in quantum.items() if q is not None))
    return " · ".join(parts)


def minority_groups(train_counts: dict[str, int]) -> set[str]:
    """Groups with fewer than half the mean training group size (Waterbirds: landbird-water and
    waterbird-land; CelebA: blond-male)."""
    if not train_counts:
        return set()
    mean = sum(train_counts.values()) / len(train_counts)
    return {g for g, n in train_counts.items() if n < 0.5 * mean}


def neuron_list(neurons: Iterable[NeuronRef], limit: int = 4) -> str:
    items = [f"{layer}#{index}" for layer, index in neurons]
    return ", ".join(items[:limit]) + (f" +{len(items) - limit} more" if len(items) > limit else "")


def neuron_count(neurons: tuple[NeuronRef, ...]) -> str:
    """``"3: layer3.0.conv2#4…"``: how many, and the first one."""
    if not neurons:
        return "0"
    layer, index = neurons[0]
    return f"{len(neurons)}: {layer}#{index}" + ("…" if len(neurons) > 1 else "")


def signed(value: float | None, spread: float | None = None) -> Text:
    if value is None:
        return Text("–")
    text = f"{value:+.2f}" + (f"±{spread:.2f}" if spread else "")
    return Text(text, style="red" if value < -0.005 else ("green" if value > 0.005 else ""))


def estimated(value: float | None, interval: Sequence[float] | None, wrap: bool = False) -> Text:
    """An estimate's Δ: ``≈-3.10 [-6.0, -0.4]`` (its 95 % interval), dimmed until exact; with
    ``wrap`` the interval is on a second line."""
    if value is None:
        return Text("–")
    lo, hi = interval if interval else (value, value)
    return Text(f"≈{value:+.2f}" + ("\n" if wrap else " ") + f"[{lo:+.1f}, {hi:+.1f}]", style="dim")


def control_cell(control: Mapping[str, ReadoutSplit] | None, split: str, group: str) -> Text:
    """The random control's change for one group: mean ± sd over its draws."""
    data = (control or {}).get(split)
    delta = data.delta_pp.get(group) if data is not None else None
    if data is None or delta is None:
        return Text("–")
    spread = data.spread_pp.get(group)
    return Text(f"{delta:+.2f}±{spread or 0:.2f}", style="dim")


def role(group: str, minority: set[str]) -> Text:
    return Text("min", style="bold yellow") if group in minority else Text("maj")


def exact_rows(result: Readout, groups: Sequence[str], minority: set[str]) -> list[Row]:
    splits, control = result.splits, result.control
    rows: list[Row] = []
    for split in SPLITS:
        data = splits.get(split)
        for i, group in enumerate(groups):
            head = (split if i == 0 else "", group, role(group, minority))
            if not data:
                rows.append((*head, "–", Text("–"), Text("–")))
                continue
            rows.append(
                (
                    *head,
                    f"{percent(data.baseline.get(group))}→{percent(data.after.get(group))}",
                    signed(data.delta_pp.get(group), data.spread_pp.get(group)),
                    control_cell(control, split, group),
                )
            )
    return rows


def estimate_rows(result: Readout, groups: Sequence[str], minority: set[str], wrap: bool) -> list[Row]:
    rows: list[Row] = []
    for split in SPLITS:
        data = result.split(split)
        for i, group in enumerate(groups):
            rows.append(
                (
                    split if i == 0 else "",
                    group,
                    role(group, minority),
                    f"{percent(data.baseline.get(group))}→≈{percent(data.after.get(group))}",
                    estimated(data.delta_pp.get(group), data.ci_pp.get(group), wrap),
                    control_cell(result.control, split, group),
                )
            )
    return rows


def width_needed(rows: Sequence[Row], padding: int = 1) -> int:
    """Columns the rows take in a DataTable: each column's widest line (header included) plus
    its padding either side."""
    widths = [len(name) for name in COLUMNS]
    for row in rows:
        for i, cell in enumerate(row):
            lines = cell.plain.split("\n") if isinstance(cell, Text) else str(cell).split("\n")
            widths[i] = max(widths[i], *(Text(line).cell_len for line in lines))
    return sum(widths) + 2 * padding * len(widths)


def show_rows(table: DataTable[str | Text], rows: Sequence[Row], height: int = 1) -> None:
    """The rows, in columns sized to them: a DataTable's columns only ever widen, so they are
    made again (an exact readout after a wider estimate fits again)."""
    table.clear(columns=True)
    table.add_columns(*COLUMNS)
    for row in rows:
        table.add_row(*row, height=height)


def show_estimate(
    table: DataTable[str | Text], result: Readout, groups: Sequence[str], minority: set[str], width: int
) -> None:
    """One line per group where it fits ``width`` columns, else the interval on a second line
    (the table then scrolls, so its scroll bar's 2 columns are kept free)."""
    rows = estimate_rows(result, groups, minority, wrap=False)
    if width and width_needed(rows, table.cell_padding) > width:
        show_rows(table, estimate_rows(result, groups, minority, wrap=True), height=2)
    else:
        show_rows(table, rows)
