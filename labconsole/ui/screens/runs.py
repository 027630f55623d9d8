"""Runs: every run directory under runs/, its status and test WGA; open one, compare two,
export a report. Everything here is read from run directories, never from live objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static

from labconsole.ui.bridge import JobEnded
from labconsole.ui.dialogs.text_view import TextDialog
from labconsole.ui.engine_port import RunEntry
from labconsole.ui.screens.base import LabScreen

STATUS_STYLE = {"done": "green", "running": "yellow", "cancelled": "magenta", "failed": "red"}


def summary_table(info: dict[str, Any]) -> Table:
    """Per-split, per-group accuracy of a run's selected epoch, WGA and means."""
    table = Table(box=None, pad_edge=False)
    splits = info.get("summary", {}).get("splits", {})
    table.add_column("metric")
    for split in splits:
        table.add_column(f"{split} %", justify="right")
    groups = list(next(iter(splits.values()), {}).get("groups", {}))
    for group in groups:
        table.add_row(group, *(f"{100 * s['groups'].get(group, 0):.1f}" for s in splits.values()))
    for key, label in (("wga", "worst-group (WGA)"), ("mean", "mean"), ("mean_groups", "mean over groups")):
        if any(key in s for s in splits.values()):
            table.add_row(
                Text(label, style="bold" if key == "wga" else ""),
                *(f"{100 * s[key]:.1f}" if key in s else "–" for s in splits.values()),
            )
    return table


def comparison_table(first: dict[str, Any], second: dict[str, Any], split: str = "test") -> Table:
    table = Table(title=f"{split} split", box=None)
    table.add_column("metric")
    table.add_column(first["name"][:28], justify="right")
    table.add_column(second["name"][:28], justify="right")
    table.add_column("Δ pp", justify="right")
    a = first.get("summary", {}).get("splits", {}).get(split, {})
    b = second.get("summary", {}).get("splits", {}).get(split, {})
    rows = [
        (g, a.get("groups", {}).get(g), b.get("groups", {}).get(g))
        for g in dict.fromkeys([*a.get("groups", {}), *b.get("groups", {})])
    ]
    rows += [("WGA", a.get("wga"), b.get("wga")), ("mean", a.get("mean"), b.get("mean"))]
    for name, x, y in rows:
        delta = "–" if x is None or y is None else f"{100 * (y - x):+.2f}"
        table.add_row(name, "–" if x is None else f"{100 * x:.1f}", "–" if y is None else f"{100 * y:.1f}", delta)
    return table


def stage_gains(info: dict[str, Any]) -> list[str]:
    """One line per stage that reports WGA before and after it (fine-tuning, DFR, …)."""
    lines = []
    for stage, result in info.get("summary", {}).items():
        if not isinstance(result, dict) or "wga_before" not in result or "wga_after" not in result:
            continue
        before, after = result["wga_before"], result["wga_after"]
        cells = [
            f"{split} {100 * before[split]:.1f} → {100 * after[split]:.1f}"
            for split in ("val", "test")
            if isinstance(before.get(split), (int, float)) and isinstance(after.get(split), (int, float))
        ]
        if cells:
            lines.append(f"{stage}: WGA % before → after: " + ", ".join(cells))
    return lines


def preset_label(run: RunEntry) -> str:
    return (run.preset or "–") + (" ·smoke" if run.smoke else "")


def run_detail(run: RunEntry, info: dict[str, Any] | None) -> Table:
    grid = Table.grid()
    grid.add_row(Text(f"{run.path} · {run.status} · preset {preset_label(run)} · variant {run.variant}", style="bold"))
    if info is not None and info.get("summary", {}).get("splits"):
        grid.add_row(summary_table(info))
        for line in stage_gains(info):
            grid.add_row(Text(line))
    elif info is not None:
        grid.add_row(Text("no summary.json yet: no stage has finished (u resumes an interrupted run)", style="dim"))
    return grid


class RunsScreen(LabScreen):
    MODE = "runs"
    BINDINGS = [
        Binding("enter", "open_run", "Open", show=True),
        Binding("space", "pick", "Pick to compare"),
        Binding("c", "compare", "Compare"),
        Binding("e", "export", "Export report"),
        Binding("u", "resume", "Resume"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunEntry] = []
        self.picked: list[str] = []
        self.summaries: dict[str, dict[str, Any]] = {}  # run path -> run_summary(), read once

    def compose_body(self) -> Iterable[Widget]:
        with Vertical(id="runs-body"):
            yield Static("", id="runs-status", classes="status-line")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="run-detail", classes="detail")

    def on_mount(self) -> None:
        self.query_one("#runs-table", DataTable).add_columns("⇄", "run", "preset", "status", "variant", "test WGA %")
        self.lab.job_end_signal.subscribe(self, self._job_ended)
        self.action_refresh()

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.query_one("#runs-table", DataTable).focus()

    def _job_ended(self, message: JobEnded) -> None:
        self.action_refresh()  # a finished (or cancelled) job wrote a run directory

    def action_refresh(self) -> None:
        self.query_one("#runs-status", Static).update(f"reading {self.lab.runs_root}/…")
        self.lab.bridge.call(
            "Listing runs", self.lab.engine.list_runs, self.lab.runs_root, on_result=self._fill, group="runs-list"
        )

    def _fill(self, runs: list[RunEntry]) -> None:
        self.runs = runs
        self.summaries.clear()
        table = self.query_one("#runs-table", DataTable)
        table.clear()
        for run in runs:
            table.add_row(
                "⇄" if run.path in self.picked else "",
                run.name,
                preset_label(run),
                Text(run.status, style=STATUS_STYLE.get(run.status, "")),
                run.variant,
                "–" if run.test_wga is None else f"{100 * run.test_wga:.1f}",
                key=run.path,
            )
        self.query_one("#runs-status", Static).update(
            f"{len(runs)} runs in {self.lab.runs_root}/ · enter opens · space picks two to compare"
            if runs
            else f"No runs in {self.lab.runs_root}/ yet: start one on Train (4)."
        )
        self._show_detail()

    def current(self) -> RunEntry | None:
        table = self.query_one("#runs-table", DataTable)
        row = table.cursor_row
        return self.runs[row] if 0 <= row < len(self.runs) else None

    @on(DataTable.RowHighlighted, "#runs-table")
    def _show_detail(self) -> None:
        run = self.current()
        detail = self.query_one("#run-detail", Static)
        if run is None:
            detail.update("")
            return
        if run.path in self.summaries:
            detail.update(run_detail(run, self.summaries[run.path]))
            return
        detail.update(run_detail(run, None))

        def loaded(info: dict[str, Any]) -> None:
            self.summaries[run.path] = info
            if self.current() == run:
                detail.update(run_detail(run, info))

        self.lab.bridge.call(
            "Reading the run", self.lab.engine.run_summary, run.path, on_result=loaded, group="runs-detail"
        )

    @on(DataTable.RowSelected, "#runs-table")
    def action_open_run(self) -> None:
        run = self.current()
        if run is None:
            return

        def show(info: dict[str, Any]) -> None:
            manifest = info.get("manifest", {})
            head = " · ".join(f"{k} {v}" for k, v in manifest.items() if isinstance(v, (str, int, float)))
            body = Table.grid()
            body.add_row(Text(head, style="dim"))
            body.add_row(summary_table(info))
            for line in stage_gains(info):
                body.add_row(Text(line))
            self.app.push_screen(TextDialog(f"Run {info['name']} ({info['status']})", body))

        self.lab.bridge.call(
            "Reading the run", self.lab.engine.run_summary, run.path, on_result=show, group="runs-open"
        )

    def action_pick(self) -> None:
        run = self.current()
        if run is None:
            return
        if run.path in self.picked:
            self.picked.remove(run.path)
        else:
            self.picked = (self.picked + [run.path])[-2:]
        table = self.query_one("#runs-table", DataTable)
        for entry in self.runs:
            table.update_cell(entry.path, table.ordered_columns[0].key, "⇄" if entry.path in self.picked else "")

    def action_compare(self) -> None:
        if len(self.picked) != 2:
            self.notify("Pick two runs with space first.", severity="warning")
            return
        engine = self.lab.engine
        first, second = self.picked

        def both() -> tuple[dict[str, Any], dict[str, Any]]:
            return engine.run_summary(first), engine.run_summary(second)

        def show(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
            self.app.push_screen(TextDialog("Compare runs", comparison_table(*pair)))

        self.lab.bridge.call("Comparing runs", both, on_result=show, group="runs-compare")

    def action_resume(self) -> None:
        """Continue the highlighted interrupted run as a job; Train (4) shows it live."""
        run = self.current()
        if run is None:
            return
        if not run.resumable:
            self.notify(
                f"{run.name} is {run.status}: only a cancelled, failed or interrupted run can be resumed.",
                severity="warning",
            )
            return
        if self.lab.job.active and self.lab.job.run_dir == run.path:
            self.notify("This run is the job running now.", severity="warning")
            return
        engine = self.lab.engine

        def work(emit: Any, cancel: Any) -> str:
            return engine.resume_job(run.path, emit=emit, cancel=cancel)

        if self.lab.start_job("train", f"resume {run.name}", work):
            self.notify(f"Resuming {run.name}: follow it on Train (4); c there cancels (the run is saved).")

    def action_export(self) -> None:
        run = self.current()
        if run is None:
            return

        def exported(paths: list[str]) -> None:
            self.lab.write_log("[info] report written: " + ", ".join(paths))
            names = ", ".join(path.rsplit("/", 1)[-1] for path in paths)
            self.notify(f"Report written into {run.path}: {names}", timeout=8)

        self.notify(f"Writing the report of {run.name}…")
        self.lab.bridge.call(
            "Exporting the report", self.lab.engine.export_report, run.path, on_result=exported, group="runs-export"
        )
