"""Interventions: zero / re-initialise / add noise to the marked neurons and read out the change
in per-group accuracy, train and test, each beside a random-neuron control (mean ± sd over its
draws, per group).

Readouts are reversible on the engine side: nothing stays modified, so "reset" only clears
the marks and the list here. Every readout is appended to the session record on disk
(``runs/<stamp>-console-session-s0/readouts.jsonl``): it survives quitting, comes back when the
same model is opened again, and ``e`` writes the session's report.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Select, Static

from labconsole.ui.engine_port import INTERVENTION_MODES, SIGMAS, NeuronRef
from labconsole.ui.screens.readout_evidence import ReadoutEvidence
from labconsole.ui.widgets.busy_line import BusyLine
from labconsole.ui.widgets.form import parse_number
from labconsole.ui.widgets.matched_control import (
    matched_rows,
    show_matched_rows,
    verdict_line,
)
from labconsole.ui.widgets.readout_table import (
    ReadoutEntry,
    exact_rows,
    minority_groups,
    neuron_count,
    neuron_list,
    readout_note,
    show_estimate,
    show_rows,
    signed,
)

if TYPE_CHECKING:  # pydantic records, imported where one is built (after the first paint)
    from labconsole.engine.records import Readout

__all__ = ["InterventionsScreen", "ReadoutEntry", "minority_groups"]

IDLE_HINT = "Press a to apply the intervention and read out per-group accuracy."


def seeds_problem(text: str) -> str | None:
    return None if parse_number(text, kind=int, minimum=1) is not None else "seeds must be a whole number ≥ 1"


def random_k_problem(text: str) -> str | None:
    return None if parse_number(text, kind=int, minimum=1) is not None else "random k must be a whole number ≥ 1"


class InterventionsScreen(ReadoutEvidence):
    MODE = "interventions"
    BINDINGS = [  # short labels: the whole footer fits in 80 columns
        Binding("a", "apply", "Apply"),
        Binding("r", "random_k", "Random k"),
        Binding("h", "focus_history", "History"),
        Binding("m", "heat_map", "Heat map"),
        Binding("e", "export", "Export"),
        Binding("x", "reset", "Reset"),
        # not in the footer (it would not fit 80 columns): the matched control's note names it
        Binding("f", "flips", "Flips", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.history: list[ReadoutEntry] = []
        self.random_presses = 0
        self.last_heat_map: dict[str, Any] | None = None  # of the session it was computed on
        self.problems: dict[str, str] = {}  # field id -> what is wrong with its value now

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
                    [("no control", False), ("+ random control", True), ("+ matched (p)", "matched")],
                    value=True,
                    allow_blank=False,
                    compact=True,
                    id="control",
                )
                yield Label("random k", classes="inline-label")
                yield Input("5", compact=True, id="random-k", tooltip="k for r (random neurons)")
            yield BusyLine("", show_clock=not self.lab.deterministic, id="readout-status", classes="status-line")
            table: DataTable[str | Text] = DataTable(id="readout", cursor_type="row", zebra_stripes=True)
            yield table
            yield Static("", id="readout-note", classes="detail")
            yield DataTable(id="history", cursor_type="row")

    def on_mount(self) -> None:
        # the matched control's note holds its verdict line too (5 lines at 80 columns)
        self.query_one("#readout-note", Static).styles.max_height = 5
        self.query_one("#history", DataTable).add_columns("#", "neurons", "edit", "min Δ train", "min Δ test")
        self.lab.marks_signal.subscribe(self, lambda _marks: self._show_marked())
        self.lab.session_signal.subscribe(self, lambda _session: self.action_reset())
        self.lab.record_signal.subscribe(self, lambda _record: self._reopen_history())
        self._show_marked()
        self._show_readout(None)
        self._reopen_history()

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

    def _reopen_history(self) -> None:
        """The readouts already in the session record (a model opened again)."""
        record = self.lab.record
        if record is None or self.history:
            return
        entries = [e for e in (ReadoutEntry.from_record(line) for line in record.entries("readout")) if e]
        for entry in entries:
            self.history.append(entry)
            self._add_history_row(entry)
        if entries:
            self._show_readout(entries[-1])
            self.query_one("#readout-status", BusyLine).update(
                f"{len(entries)} earlier readouts of this model reopened from {record.path.name}; h lists them"
            )

    # -- validation: a message while a value is wrong, gone as soon as it is fixed --------------
    @on(Input.Changed, "#seeds, #random-k")
    def _field_changed(self, event: Input.Changed) -> None:
        check = seeds_problem if event.input.id == "seeds" else random_k_problem
        problem = check(event.value)
        field = str(event.input.id)
        event.input.set_class(problem is not None, "-invalid")
        had = self.problems.pop(field, None)
        if problem:
            self.problems[field] = problem
        status = self.query_one("#readout-status", BusyLine)
        if status.busy:
            return
        if self.problems:
            status.finish(" · ".join(self.problems.values()), error=True)
        elif had:
            status.finish(IDLE_HINT)

    def _refuse_if_invalid(self) -> bool:
        if not self.problems:
            return False
        self.query_one("#readout-status", BusyLine).finish(" · ".join(self.problems.values()), error=True)
        return True

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
            self.problems["seeds"] = "seeds must be a whole number ≥ 1"
        if self._refuse_if_invalid() or seeds is None:
            return
        mode = str(self.query_one("#mode", Select).value)
        sigma = float(self.query_one("#sigma", Select).value)  # type: ignore[arg-type]
        choice = self.query_one("#control", Select).value
        matched = choice == "matched"  # the layer-matched control, after the readout, with p
        control = choice is True
        neurons = tuple(self.lab.marked)
        what = (
            f"reading out {mode}"
            + ("" if mode == "zero" else f" σ={sigma}, {seeds} seeds")
            + f" on {len(neurons)} neuron{'s' if len(neurons) != 1 else ''}"
            + (" + random control" if control else "")
            + (" + matched control" if matched else "")
        )

        def done(result: Readout) -> None:
            entry = ReadoutEntry(neurons, mode, sigma, int(seeds), result)
            line = self.lab.record_result(
                lambda record: record.add_readout(entry.console_readout(self.lab.last_ranking))
            )
            if line is not None:
                entry = ReadoutEntry(neurons, mode, sigma, int(seeds), entry.result, int(line["seq"]))
            self.history.append(entry)
            self._add_history_row(entry)
            self._show_readout(entry)
            test = entry.worst_delta("test")
            self.lab.write_log(
                f"[info] readout {entry.edit} on {len(neurons)} neurons: min Δ test "
                + ("–" if test is None else f"{test:+.2f} pp")
                + (f" (session record line {entry.seq})" if entry.seq else "")
            )

        worker = self.lab.bridge.call(
            "Readout",
            self.readout_then_matched,
            session,
            neurons,
            (mode, sigma, int(seeds)),
            control,
            matched,
            on_estimate=lambda estimate: self.app.call_from_thread(self._show_estimate, neurons, mode, estimate),
            on_result=done,
            group="readout",
            on_error=lambda error: self.query_one("#readout-status", BusyLine).finish(
                f"✗ the readout failed: {error}", error=True
            ),
            # the engine counts the chunks of its walk over the splits
            on_progress=lambda done, total: self.query_one("#readout-status", BusyLine).report(done, total, "chunks"),
        )
        self.query_one("#readout-status", BusyLine).begin(what, worker)

    def _show_readout(self, entry: ReadoutEntry | None) -> None:
        table = self.query_one("#readout", DataTable)
        show_rows(table, [])
        status = self.query_one("#readout-status", BusyLine)
        note = self.query_one("#readout-note", Static)
        self.shown = entry
        if entry is None:
            status.finish(IDLE_HINT)
            note.update("")
            return
        session = self.lab.session
        groups = list(session.group_names) if session else entry.result.group_names()
        minority = minority_groups(session.train_group_counts if session else {})
        if entry.result.evidence is not None:
            show_matched_rows(table, matched_rows(entry.result, groups, minority))
        else:
            show_rows(table, exact_rows(entry.result, groups, minority))
        mode = entry.mode if entry.mode == "zero" else f"{entry.mode} σ={entry.sigma}, {entry.seeds} seeds (± = sd)"
        count = f"{len(entry.neurons)} neuron{'s' if len(entry.neurons) != 1 else ''}"
        # its number in this list (the record's own line number counts rankings too)
        label = f"#{self.history.index(entry) + 1} " if entry in self.history else ""
        status.finish(f"{label}{mode} on {count}: {neuron_list(entry.neurons, 3)}")
        note.update(self._note(entry))

    def _show_estimate(self, neurons: tuple[NeuronRef, ...], mode: str, result: Readout) -> None:
        """The readout's first numbers (a stratified subsample, ≈ with its interval), shown while
        the exact ones are computed; they are replaced in place when the readout finishes."""
        table = self.query_one("#readout", DataTable)
        session = self.lab.session
        groups = list(session.group_names) if session else result.group_names()
        minority = minority_groups(session.train_group_counts if session else {})
        show_estimate(table, result, groups, minority, width=table.size.width or self.size.width)
        self.query_one("#readout-status", BusyLine).advance(
            1, f"≈ {mode} on {len(neurons)} neurons from a subsample (95 % interval); exact numbers follow"
        )

    def _note(self, entry: ReadoutEntry) -> str:
        found = entry.result.evidence
        if found is None:
            return readout_note(entry)
        session = self.lab.session
        groups = list(session.group_names) if session else entry.result.group_names()
        minority = minority_groups(session.train_group_counts if session else {})
        return readout_note(entry) + "\n" + verdict_line(found, groups, minority, provisional=False)

    def _add_history_row(self, entry: ReadoutEntry) -> None:
        table = self.query_one("#history", DataTable)
        table.add_row(
            str(len(self.history)),
            neuron_count(entry.neurons),
            entry.edit,
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
            self.problems["random-k"] = "random k must be a whole number ≥ 1"
        if self._refuse_if_invalid() or k is None:
            return
        seed = self.random_presses
        self.random_presses += 1

        def drawn(neurons: list[NeuronRef]) -> None:
            self.lab.set_marked(list(neurons))
            self.query_one("#readout-status", BusyLine).finish(
                f"marked {len(neurons)} random neurons (seed {seed}); a applies the intervention to them"
            )

        self.lab.bridge.call(
            "Drawing random neurons", session.random_neurons, int(k), seed, on_result=drawn, group="random-k"
        )

    def action_heat_map(self) -> None:
        """Layers × groups: each group's test-accuracy change when a layer's top neurons for
        that group are zeroed. Many readouts: the status line counts them; Esc stops."""
        from labconsole.ui.dialogs.heat_map import HeatMapDialog, trace_in_background

        session = self.lab.session
        if session is None:
            self.notify("Open a session on Setup (1) first.", severity="warning")
            return
        if self.last_heat_map is not None and self.last_heat_map.get("session") is session:
            self.app.push_screen(HeatMapDialog(self.last_heat_map))
            return
        status = self.query_one("#readout-status", BusyLine)
        k = 3

        def done(heat: dict[str, Any]) -> None:
            status.finish(f"heat map: {len(heat['layers'])} layers × {len(heat['groups'])} groups (m shows it again)")
            self.last_heat_map = {**heat, "session": session}
            self.lab.write_log(f"[info] tracing heat map computed: top {k} per layer, {len(heat['layers'])} layers")
            self.app.push_screen(HeatMapDialog(heat))

        trace_in_background(self.lab, session, status, done, k=k)

    def action_export(self) -> None:
        """The session record's report (HTML, Markdown, JSON) into its own directory."""
        record = self.lab.record
        if record is None:
            self.notify("No session record yet: open a session on Setup (1).", severity="warning")
            return
        path = str(record.path)

        def exported(paths: list[str]) -> None:
            self.lab.write_log("[info] session report written: " + ", ".join(paths))
            names = ", ".join(p.rsplit("/", 1)[-1] for p in paths)
            self.query_one("#readout-status", BusyLine).finish(f"report of this session written into {path}: {names}")

        worker = self.lab.bridge.call(
            "Exporting the session report",
            self.lab.engine.export_report,
            path,
            on_result=exported,
            group="session-export",
        )
        self.query_one("#readout-status", BusyLine).begin(f"writing the report of {record.path.name}", worker)

    def action_reset(self) -> None:
        self.history.clear()
        self.query_one("#history", DataTable).clear()
        if self.lab.marked:
            self.lab.set_marked([])
        self._show_marked()
        self._show_readout(None)

    def action_focus_history(self) -> None:
        self.query_one("#history", DataTable).focus()
