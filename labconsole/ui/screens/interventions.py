"""Interventions: zero / re-initialise / add noise to the marked neurons and read out the change
in per-group accuracy, train and test side by side, against a random-neuron control.

Readouts are reversible on the engine side: nothing stays modified, so "reset" only clears
the marks and the history here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Select, Static

from labconsole.ui.engine_port import INTERVENTION_MODES, SIGMAS, NeuronRef
from labconsole.ui.screens.base import LabScreen
from labconsole.ui.widgets.form import parse_number

SPLITS = ("train", "test")


@dataclass(frozen=True)
class ReadoutEntry:
    neurons: tuple[NeuronRef, ...]
    mode: str
    sigma: float
    seeds: int
    result: dict[str, Any]

    def worst_delta(self, split: str) -> float | None:
        deltas = self.result.get("splits", {}).get(split, {}).get("delta_pp", {})
        present = [d for d in deltas.values() if d is not None]  # a group absent from a split has None
        return min(present) if present else None


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


def percent(fraction: float | None) -> str:
    return "–" if fraction is None else f"{100 * fraction:.1f}"


def signed(value: float | None, spread: float | None = None) -> Text:
    if value is None:
        return Text("–")
    text = f"{value:+.2f}" + (f"±{spread:.2f}" if spread else "")
    return Text(text, style="red" if value < -0.005 else ("green" if value > 0.005 else ""))


class InterventionsScreen(LabScreen):
    MODE = "interventions"
    BINDINGS = [
        Binding("a", "apply", "Apply + read out"),
        Binding("r", "random_k", "Random k"),
        Binding("x", "reset", "Reset"),
        Binding("h", "focus_history", "History", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.history: list[ReadoutEntry] = []
        self.random_presses = 0

    def compose_body(self) -> Iterable[Widget]:
        with Vertical(id="interventions-body"):
            yield Static("", id="marked-summary", classes="status-line")
            with Horizontal(id="intervention-controls", classes="controls"):
                yield Select(
                    [(m, m) for m in INTERVENTION_MODES], value="zero", allow_blank=False, compact=True, id="mode"
                )
                yield Select(
                    [(f"σ {s}", s) for s in SIGMAS], value=SIGMAS[1], allow_blank=False, compact=True, id="sigma"
                )
                yield Label("seeds", classes="inline-label")
                yield Input("10", compact=True, id="seeds", tooltip="seeds for the random modes")
                yield Select(
                    [("no control", False), ("+ random control", True)],
                    value=True,
                    allow_blank=False,
                    compact=True,
                    id="control",
                )
                yield Label("random k", classes="inline-label")
                yield Input("5", compact=True, id="random-k", tooltip="k for r (random neurons)")
            yield Static("", id="readout-status", classes="status-line")
            table: DataTable[str | Text] = DataTable(id="readout", cursor_type="row", zebra_stripes=True)
            yield table
            yield Static("", id="readout-note", classes="detail")
            yield DataTable(id="history", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#readout", DataTable).add_columns("group", "role", "train %", "Δ pp", "test %", "Δ pp")
        self.query_one("#history", DataTable).add_columns(
            "#", "neurons", "mode", "σ", "seeds", "min Δ train", "min Δ test"
        )
        self.lab.marks_signal.subscribe(self, lambda _marks: self._show_marked())
        self.lab.session_signal.subscribe(self, lambda _session: self.action_reset())
        self._show_marked()
        self._show_readout(None)

    def _show_marked(self) -> None:
        marked = self.lab.marked
        text = (
            f"Marked: {len(marked)} neuron{'s' if len(marked) != 1 else ''}: {neuron_list(marked, 3)}"
            if marked
            else "No neurons marked: m on Neurons (2), or r for k random neurons."
        )
        if self.lab.session is None:
            text = "No session yet: open one on Setup (1)."
        self.query_one("#marked-summary", Static).update(text)

    # -- readout ---------------------------------------------------------------------------------
    def action_apply(self) -> None:
        session = self.lab.session
        if session is None:
            self.notify("Open a session on Setup (1) first.", severity="warning")
            return
        if not self.lab.marked:
            self.notify("Mark neurons on Neurons (2) or press r for random ones.", severity="warning")
            return
        seeds = parse_number(self.query_one("#seeds", Input).value, kind=int, minimum=1)
        if seeds is None:
            self.notify("seeds must be a whole number ≥ 1", severity="warning")
            return
        mode = str(self.query_one("#mode", Select).value)
        sigma = float(self.query_one("#sigma", Select).value)  # type: ignore[arg-type]
        control = bool(self.query_one("#control", Select).value)
        neurons = tuple(self.lab.marked)
        self.query_one("#readout-status", Static).update(
            f"reading out {mode}"
            + ("" if mode == "zero" else f" σ={sigma}, {seeds} seeds")
            + f" on {len(neurons)} neuron{'s' if len(neurons) != 1 else ''}…"
        )

        def done(result: dict[str, Any]) -> None:
            entry = ReadoutEntry(neurons, mode, sigma, int(seeds), result)
            self.history.append(entry)
            self._add_history_row(entry)
            self._show_readout(entry)

        self.lab.bridge.call(
            "Readout",
            session.readout,
            list(neurons),
            mode,
            sigma,
            int(seeds),
            SPLITS,
            control,
            on_result=done,
            group="readout",
        )

    def _show_readout(self, entry: ReadoutEntry | None) -> None:
        table = self.query_one("#readout", DataTable)
        table.clear()
        status = self.query_one("#readout-status", Static)
        note = self.query_one("#readout-note", Static)
        if entry is None:
            status.update("Press a to apply the intervention and read out per-group accuracy.")
            note.update("")
            return
        splits = entry.result.get("splits", {})
        session = self.lab.session
        groups = list(session.group_names) if session else list(splits.get("train", {}).get("baseline", {}))
        minority = minority_groups(session.train_group_counts if session else {})
        for group in groups:
            cells: list[str | Text] = [group, Text("min", style="bold yellow") if group in minority else Text("maj")]
            for split in SPLITS:
                data = splits.get(split)
                if not data:
                    cells += ["–", Text("–")]
                    continue
                cells.append(f"{percent(data['baseline'].get(group))}→{percent(data['after'].get(group))}")
                cells.append(signed(data["delta_pp"].get(group), data.get("spread_pp", {}).get(group)))
            table.add_row(*cells)
        mode = entry.mode if entry.mode == "zero" else f"{entry.mode} σ={entry.sigma}, {entry.seeds} seeds (± = std)"
        count = f"{len(entry.neurons)} neuron{'s' if len(entry.neurons) != 1 else ''}"
        status.update(f"{mode} on {count}: {neuron_list(entry.neurons, 3)}")
        note.update(self._note(entry))

    def _note(self, entry: ReadoutEntry) -> str:
        quantum = entry.result.get("wga_quantum_pp") or {}
        parts = []
        if any(q is not None for q in quantum.values()):
            parts.append("one image = " + ", ".join(f"{s} {q:.2f} pp" for s, q in quantum.items() if q is not None))
        control = entry.result.get("control")
        if control:
            for split in SPLITS:
                deltas = [d for d in control.get(split, {}).get("delta_pp", {}).values() if d is not None]
                if deltas:
                    parts.append(f"control ({split}, random neurons): worst {min(deltas):+.2f} pp")
        return " · ".join(parts)

    def _add_history_row(self, entry: ReadoutEntry) -> None:
        table = self.query_one("#history", DataTable)
        table.add_row(
            str(len(self.history)),
            neuron_list(entry.neurons, 1),
            entry.mode,
            "–" if entry.mode == "zero" else str(entry.sigma),
            "–" if entry.mode == "zero" else str(entry.seeds),
            signed(entry.worst_delta("train")),
            signed(entry.worst_delta("test")),
        )
        table.move_cursor(row=table.row_count - 1)

    @on(DataTable.RowSelected, "#history")
    def _history_selected(self, event: DataTable.RowSelected) -> None:
        if 0 <= event.cursor_row < len(self.history):
            self._show_readout(self.history[event.cursor_row])

    # -- marking helpers ---------------------------------------------------------------------------
    def action_random_k(self) -> None:
        """Mark k neurons drawn uniformly from all eligible layers: the control for a ranking.

        The engine draws them (the same draw its random controls use); the n-th press of this
        session uses seed n, so a set can be drawn again."""
        session = self.lab.session
        if session is None:
            self.notify("Open a session on Setup (1) first.", severity="warning")
            return
        k = parse_number(self.query_one("#random-k", Input).value, kind=int, minimum=1)
        if k is None:
            self.notify("random k must be a whole number ≥ 1", severity="warning")
            return
        seed = self.random_presses
        self.random_presses += 1

        def drawn(neurons: list[NeuronRef]) -> None:
            self.lab.set_marked(list(neurons))
            self.query_one("#readout-status", Static).update(
                f"marked {len(neurons)} random neurons (seed {seed}); a applies the intervention to them"
            )

        self.lab.bridge.call(
            "Drawing random neurons", session.random_neurons, int(k), seed, on_result=drawn, group="random-k"
        )

    def action_reset(self) -> None:
        self.history.clear()
        self.query_one("#history", DataTable).clear()
        if self.lab.marked:
            self.lab.set_marked([])
        self._show_marked()
        self._show_readout(None)

    def action_focus_history(self) -> None:
        self.query_one("#history", DataTable).focus()
