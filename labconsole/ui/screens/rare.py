"""Rare lab (Paper B): how few spurious examples it takes for a model to learn a pattern.

Pick a pattern (previewed on a training image), the numbers n of spurious examples and the
target class, run the experiment (a job: cancellable, streams progress), read the spurious
score and clean/spurious accuracy per n. Beside it, the ridge-regression theory curve.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Input, Select, Static
from textual_plotext import PlotextPlot

from labconsole.formatting import MISSING
from labconsole.formatting import pct as percent
from labconsole.ui.bridge import JobEnded
from labconsole.ui.engine_port import RARE_PATTERNS, RareScorePoint
from labconsole.ui.screens.base import LabScreen
from labconsole.ui.widgets.form import FieldRow, parse_int_list, parse_number
from labconsole.ui.widgets.half_block import HalfBlockImage

PREVIEW_SIZE = 28  # the digits' resolution: S-patterns and Inv are defined on 28×28
THEORY_GAMMAS = tuple(i / 200 for i in range(0, 41))  # γ from 0 to 0.2: the phase transition


class RareScreen(LabScreen):
    MODE = "rare"
    BINDINGS = [
        Binding("g", "run", "Run"),
        Binding("c", "cancel", "Cancel"),
        Binding("p", "next_pattern", "Next pattern"),
        Binding("v", "toggle_chart", "Measured/theory"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[RareScorePoint] = []
        self.chart = "theory"  # or "measured": the experiment's points with their error bars
        self.plotted: dict[str, list[float]] = {}  # the measured points last drawn
        self._theory: tuple[dict[str, list[float]], float, float] | None = None

    def compose_body(self) -> Iterable[Widget]:
        with Horizontal(id="rare-body"):
            with Vertical(id="rare-left", classes="form"):
                yield FieldRow(
                    "Pattern",
                    Select([(p, p) for p in RARE_PATTERNS], value="S3", allow_blank=False, compact=True, id="pattern"),
                )
                yield FieldRow("n examples", Input("0,1,3,5,10,20,100", compact=True, id="counts"))
                yield FieldRow("Target", Input("1", compact=True, id="target"))
                yield FieldRow("Seeds", Input("5", compact=True, id="rare-seeds"))
                yield FieldRow(
                    "σ λ x_sp",
                    Input("1.0", compact=True, id="noise", tooltip="theory: noise σ"),
                    Input("0.1", compact=True, id="ridge", tooltip="theory: ridge penalty λ"),
                    Input("3.0", compact=True, id="x-sp", tooltip="theory: pattern strength x_sp"),
                )
                yield HalfBlockImage(id="preview")
            with Vertical(id="rare-right"):
                yield Static(
                    "g trains with each n; score = share of test images the pattern pushes to the target.",
                    id="rare-status",
                    classes="status-line",
                )
                yield DataTable(id="rare-table", cursor_type="row", zebra_stripes=True)
                yield PlotextPlot(id="theory")

    def on_mount(self) -> None:
        self.query_one("#rare-table", DataTable).add_columns("n", "score", "± s.e.", "clean %", "spur. %", "p vs 0")
        self.lab.job_end_signal.subscribe(self, self._job_ended)
        self.refresh_preview()
        self.refresh_theory()

    # -- preview and theory ------------------------------------------------------------------------
    @on(Select.Changed, "#pattern")
    def refresh_preview(self) -> None:
        pattern = str(self.query_one("#pattern", Select).value)
        preview = self.query_one("#preview", HalfBlockImage)
        self.lab.bridge.call(
            "Pattern preview",
            self.lab.engine.rare_preview,
            pattern,
            PREVIEW_SIZE,
            on_result=preview.show,
            group="rare-preview",
        )

    def action_next_pattern(self) -> None:
        select = self.query_one("#pattern", Select)
        index = RARE_PATTERNS.index(str(select.value)) if select.value in RARE_PATTERNS else -1
        select.value = RARE_PATTERNS[(index + 1) % len(RARE_PATTERNS)]

    @on(Input.Changed, "#noise, #ridge, #x-sp")
    def refresh_theory(self) -> None:
        noise = parse_number(self.query_one("#noise", Input).value, minimum=0.0)
        ridge = parse_number(self.query_one("#ridge", Input).value, minimum=0.0)
        x_sp = parse_number(self.query_one("#x-sp", Input).value, minimum=0.0)
        if noise is None or ridge is None or x_sp is None:
            return
        self.lab.bridge.call(
            "Theory curve",
            self.lab.engine.theory_curve,
            THEORY_GAMMAS,
            sigma_inv=float(noise),
            sigma_sp=float(noise),
            ridge=float(ridge),
            x_sp=float(x_sp),
            on_result=lambda curve: self._plot_theory(curve, float(noise), float(ridge)),
            group="rare-theory",
        )

    def action_toggle_chart(self) -> None:
        if not self.rows:
            self.notify("No measured points yet: g runs the experiment.")
            return
        self.chart = "theory" if self.chart == "measured" else "measured"
        self._draw()

    def _draw(self) -> None:
        if self.chart == "measured" and self.rows:
            self._plot_measured()
        elif self._theory is not None:
            self._plot_theory(*self._theory)

    def _plot_measured(self) -> None:
        """Spurious score per n, mean ± s.e. over seeds, with the clean/spurious accuracies."""
        plot = self.query_one("#theory", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        # a point without a score (no seed finished) is not drawn
        rows = sorted((row for row in self.rows if row.spurious_score is not None), key=lambda row: row.n)
        xs = [float(i) for i in range(len(rows))]  # evenly spaced: n spans 0 … 100s
        plt.title("measured: score % vs n, ± s.e.")  # short: plotext drops a wide title
        plt.xlabel("n spurious examples")
        plt.ylim(0, 100)
        scores = [100 * (row.spurious_score or 0.0) for row in rows]
        errors = [100 * (row.spurious_score_se or 0.0) for row in rows]
        plt.error(xs, scores, yerr=errors, label="score ± s.e.")
        self.plotted = {"n": [row.n for row in rows], "score_pct": scores, "se_pct": errors}
        plt.scatter(xs, scores, marker="●")
        for accuracies, label in (
            ([row.clean_acc for row in rows], "clean acc."),
            ([row.spurious_acc for row in rows], "spurious acc."),
        ):
            values = [100 * value for value in accuracies if value is not None]
            if len(values) == len(rows):
                plt.plot(xs, values, label=label, marker="braille")
        plt.xticks(xs, [str(row.n) for row in rows])
        plot.refresh()

    def _plot_theory(self, curve: dict[str, list[float]], noise: float, ridge: float) -> None:
        self._theory = (curve, noise, ridge)
        if self.chart == "measured" and self.rows:
            return  # drawn when v switches back
        plot = self.query_one("#theory", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"theory: acc. % vs γ (σ={noise}, λ={ridge})")
        plt.xlabel("γ")
        plt.ylim(0, 100)
        plt.plot(curve["gamma"], [100 * v for v in curve["clean_acc"]], label="clean", marker="braille")
        plt.plot(curve["gamma"], [100 * v for v in curve["spurious_acc"]], label="spurious", marker="braille")
        plot.refresh()

    # -- the experiment ------------------------------------------------------------------------------
    def form_problems(self) -> list[str]:
        """What is wrong with the experiment's fields now, one phrase per field."""
        problems = []
        if parse_int_list(self.query_one("#counts", Input).value) is None:
            problems.append("n examples: whole numbers ≥ 0 separated by commas")
        if parse_number(self.query_one("#target", Input).value, kind=int, minimum=0) is None:
            problems.append("target: a class number ≥ 0")
        if parse_number(self.query_one("#rare-seeds", Input).value, kind=int, minimum=1) is None:
            problems.append("seeds: a whole number ≥ 1")
        return problems

    @on(Input.Changed, "#counts, #target, #rare-seeds")
    def _fields_changed(self) -> None:
        """A shown problem goes as soon as the fields are valid again."""
        status = self.query_one("#rare-status", Static)
        if status.has_class("error-text"):
            problems = self.form_problems()
            status.update(" · ".join(problems) if problems else "fields valid: g runs the experiment")
            status.set_class(bool(problems), "error-text")

    def action_run(self) -> None:
        pattern = str(self.query_one("#pattern", Select).value)
        counts = parse_int_list(self.query_one("#counts", Input).value)
        target = parse_number(self.query_one("#target", Input).value, kind=int, minimum=0)
        seeds = parse_number(self.query_one("#rare-seeds", Input).value, kind=int, minimum=1)
        if counts is None or target is None or seeds is None:
            status = self.query_one("#rare-status", Static)
            status.update(" · ".join(self.form_problems()))  # on the screen until fixed
            status.set_class(True, "error-text")
            return
        engine = self.lab.engine

        def work(emit: Any, cancel: Any) -> list[RareScorePoint]:
            return engine.rare_experiment(pattern, counts, int(target), int(seeds), emit=emit, cancel=cancel)

        if self.lab.start_job("rare", f"rare {pattern}", work):
            self.query_one("#rare-status", Static).update(
                f"training with {pattern} on class {target}, n = {', '.join(map(str, counts))}, {seeds} seeds…"
            )

    def action_cancel(self) -> None:
        if self.lab.bridge.job_running:
            self.lab.cancel_job()

    def on_job_events(self, events: tuple[Any, ...]) -> None:
        job = self.lab.job
        if job.kind == "rare" and job.active and job.progress is not None:
            self.query_one("#rare-status", Static).update(
                f"{job.label}: {job.progress.epoch}/{job.progress.total_epochs} values of n done"
            )

    def _job_ended(self, message: JobEnded) -> None:
        if message.kind != "rare":
            return
        self.rows = list(message.result or [])
        table = self.query_one("#rare-table", DataTable)
        table.clear()
        for row in self.rows:
            table.add_row(
                str(row.n),
                _number(row.spurious_score, ".3f"),
                _number(row.spurious_score_se, ".3f"),
                percent(row.clean_acc),
                percent(row.spurious_acc),
                _number(row.p_value, ".3g"),
            )
        if self.rows:
            self.chart = "measured"
            self._draw()
        status = self.lab.job.status
        self.query_one("#rare-status", Static).update(
            f"{self.lab.job.label}: {status}; spurious score = share of test images whose target-class "
            "probability rises by > 0.1 with the pattern"
        )


def _number(value: float | None, spec: str) -> str:
    return MISSING if value is None else format(value, spec)
