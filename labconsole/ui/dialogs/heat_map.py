"""The layers × groups tracing heat map (Paper A, Figure 7) in the console.

For every group g, the session ranks each layer's neurons on g (scope per-layer, top k); then,
layer by layer, those k neurons are zeroed and g's test accuracy is read out. A cell is that
change in percentage points: where in the network a group's accuracy lives. It is the
structured tracing the headless ``tracing`` stage writes, computed here from the open session,
on a worker (``trace_in_background``; Interventions' ``m``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from labconsole.ui.engine_port import LayerInfo, SessionPort
from labconsole.ui.widgets.group_chart import group_abbreviations

if TYPE_CHECKING:
    from labconsole.ui.app import LabConsoleApp
    from labconsole.ui.widgets.busy_line import BusyLine

HeatMap = dict[str, Any]  # {"criterion", "k", "split", "groups", "layers", "delta_pp": {layer: {group: pp}}}


def trace_heat_map(
    session: SessionPort,
    layers: Sequence[LayerInfo],
    *,
    criterion: str = "gradient",
    k: int = 3,
    split: str = "test",
    progress: Callable[[int, int, str], None] = lambda done, total, what: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> HeatMap:
    """Runs on a worker; ``progress(n, N, what)`` after each step, stops early when ``cancelled()``."""
    groups = list(session.group_names)
    names = [layer.name for layer in layers]
    total = len(groups) * (1 + len(names))
    done = 0
    delta: dict[str, dict[str, float | None]] = {name: {} for name in names}
    for group in groups:
        if cancelled():
            break
        progress(done, total, f"ranking every layer on {group}")
        top = session.rank(criterion, group, "per-layer", k)
        done += 1
        for name in names:
            if cancelled():
                break
            neurons = [(layer, index) for layer, index, _ in top if layer == name][:k]
            progress(done, total, f"zeroing the top {k} of {name} for {group}")
            if neurons:
                result = session.readout(neurons, "zero", 0.0, 1, (split,), False)
                delta[name][group] = result.split(split).delta_pp.get(group)
            done += 1
    progress(done, total, "done")
    return {"criterion": criterion, "k": k, "split": split, "groups": groups, "layers": names, "delta_pp": delta}


def trace_in_background(
    lab: LabConsoleApp, session: SessionPort, status: BusyLine, on_done: Callable[[HeatMap], None], *, k: int = 3
) -> None:
    """``trace_heat_map`` of ``session`` on a worker: ``status`` counts its steps (groups × (1
    ranking + layers)) and says what it computes; Esc stops it; ``on_done(heat)`` on the UI
    thread once it is complete."""
    from textual.worker import get_current_worker

    layers = list(lab.layers)

    def work() -> HeatMap:
        worker = get_current_worker()

        def progress(done: int, total: int, what: str) -> None:
            def show() -> None:
                if status.busy:  # not after Esc stopped waiting
                    status.advance(done + 1, f"heat map: {what}")

            lab.call_from_thread(show)

        return trace_heat_map(session, layers, k=k, progress=progress, cancelled=lambda: worker.is_cancelled)

    worker = lab.bridge.call(
        "Tracing heat map",
        work,
        on_result=on_done,
        group="heat-map",
        on_error=lambda error: status.finish(f"✗ the heat map failed: {error}", error=True),
    )
    total = len(session.group_names) * (1 + len(layers))
    status.begin(f"heat map: ranking every layer on {session.group_names[0]}", worker, total=total)


def cell(value: float | None, worst: float) -> Text:
    """Δ pp on a red scale: the deeper the red, the more of the group's accuracy that layer holds."""
    if value is None:
        return Text("–", style="dim")
    share = min(1.0, max(0.0, -value / worst)) if worst > 0 else 0.0
    red = int(40 + 180 * share)
    return Text(f"{value:+.1f}", style=f"bold white on rgb({red},30,30)" if share > 0.05 else "")


def heat_map_table(heat: HeatMap) -> Table:
    groups = heat["groups"]
    values = [v for row in heat["delta_pp"].values() for v in row.values() if isinstance(v, (int, float))]
    worst = -min(values, default=0.0)
    short = group_abbreviations(groups)
    table = Table(box=None, pad_edge=False, padding=(0, 1))
    table.add_column("layer", no_wrap=True)
    for group in groups:
        table.add_column(short[group], justify="right", no_wrap=True)
    for layer in heat["layers"]:
        table.add_row(layer, *(cell(heat["delta_pp"][layer].get(g), worst) for g in groups))
    return table


class HeatMapDialog(ModalScreen[None]):
    """The heat map, with what it measures; Escape or q closes it."""

    BINDINGS = [Binding("escape,q,m", "close", "Close")]

    def __init__(self, heat: HeatMap) -> None:
        super().__init__()
        self.heat = heat

    def compose(self) -> ComposeResult:
        heat = self.heat
        with Vertical(classes="dialog wide", id="heat-map"):
            yield Static(
                f"Tracing heat map: each group's Δ {heat['split']} accuracy (pp) when a layer's top "
                f"{heat['k']} {heat['criterion']} neurons for that group are zeroed",
                classes="dialog-title",
            )
            with VerticalScroll():
                yield Static(heat_map_table(heat), id="heat-map-table")
            short = group_abbreviations(heat["groups"])
            yield Static(
                " · ".join(f"{short[g]} {g}" for g in heat["groups"]) + " · redder = more lost · Esc close",
                classes="dialog-hint",
            )

    def action_close(self) -> None:
        self.dismiss(None)
