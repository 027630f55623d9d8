"""Runs: every run directory under runs/, its status and test WGA; open one, compare two,
export a report. Everything here is read from run directories, never from live objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static

from labconsole.formatting import MISSING, pct, pp
from labconsole.ui.bridge import JobEnded
from labconsole.ui.dialogs.text_view import TextDialog
from labconsole.ui.engine_port import RunDetails, RunEntry
from labconsole.ui.screens.base import LabScreen

if TYPE_CHECKING:  # pydantic models: loaded with the first run read, not with the screen
    from labconsole.engine.records import RunSummary

STATUS_STYLE = {"done": "green", "running": "yellow", "cancelled": "magenta", "failed": "red"}


def summary_table(summary: RunSummary) -> Table:
    """Per-split, per-group accuracy of a run's selected epoch, WGA and means."""
    table = Table(box=None, pad_edge=False)
    splits = summary.splits
    table.add_column("metric")
    for split in splits:
        table.add_column(f"{split} %", justify="right")
    first = next(iter(splits.values()), None)
    for group in first.groups if first is not None else {}:
        table.add_row(group, *(_percent(s.groups.get(group)) for s in splits.values()))
    for key, label in (("wga", "worst-group (WGA)"), ("mean", "mean"), ("mean_groups", "mean over groups")):
        values = [getattr(s, key) for s in splits.values()]
        if any(v is not None for v in values):
            table.add_row(Text(label, style="bold" if key == "wga" else ""), *(pct(v) for v in values))
    return table


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}"


def comparison_table(first: RunDetails, second: RunDetails, split: str = "test") -> Table:
    table = Table(title=f"{split} split", box=None)
    table.add_column("metric")
    table.add_column(first.name[:28], justify="right")
    table.add_column(second.name[:28], justify="right")
    table.add_column("Δ pp", justify="right")
    a = first.summary.splits.get(split)
    b = second.summary.splits.get(split)
    a_groups = a.groups if a is not None else {}
    b_groups = b.groups if b is not None else {}
    rows = [(g, a_groups.get(g), b_groups.get(g)) for g in dict.fromkeys([*a_groups, *b_groups])]
    rows += [
        ("WGA", a.wga if a else None, b.wga if b else None),
        ("mean", a.mean if a else None, b.mean if b else None),
    ]
    for name, x, y in rows:
        delta = MISSING if x is None or y is None else pp(100 * (y - x))
        table.add_row(name, pct(x), pct(y), delta)
    return table


def stage_gains(summary: RunSummary) -> list[str]:
    """One line per stage that reports WGA before and after it (fine-tuning, DFR, …)."""
    lines = []
    for stage, section in summary.stage_sections():
        before, after = getattr(section, "wga_before", None), getattr(section, "wga_after", None)
        if not isinstance(before, dict) or not isinstance(after, dict):
            continue
        cells = [
            f"{split} {100 * b:.1f} → {100 * a:.1f}"
            for split in ("val", "test")
            if isinstance(b := before.get(split), (int, float)) and isinstance(a := after.get(split), (int, float))
        ]
        if cells:
            lines.append(f"{stage}: WGA % before → after: " + ", ".join(cells))
    return lines


STAGE_SHORT = {"erm": "ERM", "finetune": "FT", "dfr": "DFR", "model": "model"}


def preset_label(run: RunEntry) -> str:
    return (run.preset or MISSING) + (" ·smoke" if run.smoke else "")


def wga_label(run: RunEntry) -> str:
    """The final model's test WGA with its stage, ``74.1 FT``: a fine-tuned run is not its ERM."""
    if run.test_wga is None:
        return MISSING
    stage = STAGE_SHORT.get(run.final_stage, run.final_stage)
    return f"{100 * run.test_wga:.1f}" + (f" {stage}" if stage else "")


def rare_lines(summary: RunSummary) -> list[str]:
    """Paper B runs: the spurious score per pattern and n (mean ± s.e. over seeds)."""
    from labconsole.engine.records import RareScoreSection

    lines = []
    for stage, section in summary.stage_sections():
        if not isinstance(section, RareScoreSection):
            continue
        for pattern, per_n in section.per_pattern.items():
            cells = []
            for n, cell in sorted(per_n.items(), key=lambda item: int(item[0]) if item[0].isdigit() else 0):
                score = cell.score
                if score.mean is not None:
                    se = f"±{score.se:.3f}" if score.se is not None else ""
                    cells.append(f"n={n} {score.mean:.3f}{se}")
            if cells:
                lines.append(f"{stage} {pattern}: spurious score " + ", ".join(cells))
    return lines


def other_stage_lines(summary: RunSummary) -> list[str]:
    """A line per finished stage that has neither per-split accuracies nor a rare-lab table."""
    from labconsole.engine.records import RareScoreSection

    lines = []
    for stage, section in summary.stage_sections():
        if stage in ("erm", "model") or isinstance(section, RareScoreSection):
            continue
        numbers = [
            f"{k} {v:.4g}"
            for k, v in section.to_json().items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        lines.append(f"{stage}: " + (", ".join(numbers[:4]) if numbers else "done (see the report, e)"))
    return lines


def run_detail(run: RunEntry, info: RunDetails | None, status: str = "") -> Table:
    grid = Table.grid()
    grid.add_row(
        Text(f"{run.path} · {status or run.status} · preset {preset_label(run)} · variant {run.variant}", style="bold")
    )
    if info is not None:
        for line in summary_lines(info.summary):
            grid.add_row(line)
    return grid


def summary_lines(summary: RunSummary) -> list[Table | Text]:
    """What a run's summary.json says: per-split accuracies, gains per stage, rare-lab scores;
    "no summary.json yet" only when there is none."""
    out: list[Table | Text] = []
    if summary.splits:
        out.append(summary_table(summary))
        out += [Text(line) for line in stage_gains(summary)]
    out += [Text(line) for line in rare_lines(summary)]
    if not summary.splits:
        out += [Text(line) for line in other_stage_lines(summary)]
    if not out:
        out.append(Text("no summary.json yet: no stage has finished (u resumes an interrupted run)", style="dim"))
    return out


class RunsScreen(LabScreen):
    MODE = "runs"
    BINDINGS = [
        Binding("enter", "open_run", "Open", show=True),
        Binding("space", "pick", "Pick"),  # short labels: the footer fits in 80 columns
        Binding("c", "compare", "Compare"),
        Binding("e", "export", "Export"),
        Binding("u", "resume", "Resume"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunEntry] = []
        self.picked: list[str] = []
        self.summaries: dict[str, RunDetails] = {}  # run path -> run_summary(), read once

    def compose_body(self) -> Iterable[Widget]:
        with Vertical(id="runs-body"):
            yield Static("", id="runs-status", classes="status-line")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="run-detail", classes="detail")

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        table.add_column("⇄", key="pick")
        table.add_column("run", key="run")
        table.add_column("preset", key="preset")
        table.add_column("status", key="status")
        table.add_column("test WGA", key="wga")
        self.lab.job_end_signal.subscribe(self, self._job_ended)
        self.action_refresh()

    def live_status(self, run: RunEntry) -> str:
        """The job's own status for the run it is running (a resumed run is not "cancelled")."""
        job = self.lab.job
        if job.active and job.run_dir and job.run_dir == run.path:
            return job.status
        return run.status

    def on_job_events(self, events: tuple[Any, ...]) -> None:
        table = self.query_one("#runs-table", DataTable)
        for run in self.runs:
            status = self.live_status(run)
            try:
                table.update_cell(run.path, "status", Text(status, style=STATUS_STYLE.get(status, "")))
            except Exception:  # the table is being refilled; the next fill shows it
                continue
        current = self.current()
        if current is not None and self.lab.job.run_dir == current.path:
            self._show_detail()

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
            status = self.live_status(run)
            table.add_row(
                "⇄" if run.path in self.picked else "",
                run.name,
                preset_label(run),
                Text(status, style=STATUS_STYLE.get(status, "")),
                wga_label(run),
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
        status = self.live_status(run)
        if run.path in self.summaries:
            detail.update(run_detail(run, self.summaries[run.path], status))
            return
        detail.update(run_detail(run, None, status))

        def loaded(info: RunDetails) -> None:
            self.summaries[run.path] = info
            if self.current() == run:
                detail.update(run_detail(run, info, self.live_status(run)))

        self.lab.bridge.call(
            "Reading the run", self.lab.engine.run_summary, run.path, on_result=loaded, group="runs-detail"
        )

    @on(DataTable.RowSelected, "#runs-table")
    def action_open_run(self) -> None:
        run = self.current()
        if run is None:
            return

        def show(info: RunDetails) -> None:
            manifest = info.manifest.to_json()
            head = " · ".join(f"{k} {v}" for k, v in manifest.items() if isinstance(v, (str, int, float)))
            body = Table.grid()
            body.add_row(Text(head, style="dim"))
            for line in summary_lines(info.summary):
                body.add_row(line)
            self.app.push_screen(TextDialog(f"Run {info.name} ({info.status})", body))

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

        def both() -> tuple[RunDetails, RunDetails]:
            return engine.run_summary(first), engine.run_summary(second)

        def show(pair: tuple[RunDetails, RunDetails]) -> None:
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

        def start(history: list[Any]) -> None:
            # the epochs it recorded before come first: the views show the whole run
            # the name without its time stamp: the mode bar shows the whole label at 80×24
            short = run.name.split("-", 2)[-1] if run.name[:8].isdigit() else run.name
            if self.lab.start_job("train", f"resume {short}", work, history=history, run_dir=run.path):
                self.notify(f"Resuming {run.name}: follow it on Train (4); c there cancels (the run is saved).")
                self.on_job_events(())

        self.lab.bridge.call(
            "Reading the run's epochs", engine.run_epochs, run.path, on_result=start, group="runs-resume"
        )

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
