"""The headless runner's view of engine events: a progress bar on stderr, epoch lines, and a
per-group table at the end. Uses rich, never textual."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, TaskID, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bar
from rich.table import Table

from labconsole.engine import events as ev
from labconsole.engine.records import RunSummary
from labconsole.formatting import pct as pct  # the runs table and the final tables share it

err = Console(stderr=True)
out = Console()


class HeadlessPrinter:
    """Consumes events in the main thread; keeps at most one live progress bar."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar: Bar | None = None
        self.task: TaskID | None = None
        self.bar_key: tuple[str, int] | None = None

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Progress):
            self._progress(event)
            return
        if isinstance(event, ev.RunStarted):
            err.print(
                f"[bold]run[/] {event.run_dir}  (preset {event.preset}, stages {', '.join(event.stages)}, "
                f"device {event.device}, variant {event.variant})"
            )
        elif isinstance(event, ev.EpochResult):
            self._close_bar()
            if not self.quiet:
                parts = [f"{event.stage} epoch {event.epoch}/{event.total_epochs}"]
                if event.train_loss is not None:
                    parts.append(f"loss {event.train_loss:.4f}")
                for split in ("train", "val", "test"):
                    if split in event.splits:
                        parts.append(f"{split} WGA {pct(event.splits[split].wga)}")
                if event.is_best:
                    parts.append("[green]★ best[/]")
                err.print("  ".join(parts))
        elif isinstance(event, ev.LogRecord):
            if event.level in ("warning", "error"):
                self._close_bar()
                err.print(f"[{'yellow' if event.level == 'warning' else 'red'}]{event.level}:[/] {event.message}")
            elif not self.quiet and event.level == "info":
                self._close_bar()
                # Multi-line messages are pre-formatted tables: never re-wrap them.
                err.print(event.message, style="dim", markup=False, soft_wrap="\n" in event.message)
        elif isinstance(event, ev.ArtifactWritten):
            if not self.quiet:
                self._close_bar()
                err.print(f"[dim]wrote {event.path}[/]")
        elif isinstance(event, ev.RunFinished):
            self._close_bar()

    def _progress(self, event: ev.Progress) -> None:
        if self.quiet:
            return
        key = (event.stage, event.epoch)
        if key != self.bar_key:
            self._close_bar()
            self.bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[loss]}"),
                console=err,
                transient=True,
            )
            self.bar.start()
            label = f"{event.stage} {event.epoch}/{event.total_epochs}" if event.total_epochs else event.stage
            self.task = self.bar.add_task(label, total=event.total_steps or None, loss="")
            self.bar_key = key
        assert self.bar is not None and self.task is not None
        loss = f"loss {event.loss:.4f}" if event.loss is not None else event.message
        self.bar.update(self.task, completed=event.step, loss=loss)

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
            self.bar_key = None


def group_table(summary: RunSummary, title: str = "per-group accuracy (%), selected epoch") -> Table | None:
    """The report's per-group table (groups × splits, named means, WGA quantum) for the terminal."""
    from labconsole.report.markdown import to_rich
    from labconsole.report.run_sections import group_table as report_group_table

    table = report_group_table(summary.splits, title, summary.selection)
    return to_rich(table) if table is not None else None


def finetune_line(summary: RunSummary) -> str | None:
    """ "fine-tuning: test WGA 71.3 → 55.0 (−16.3 pp) …" when the run fine-tuned."""
    ft = summary.finetune
    if ft is None:
        return None
    parts = []
    for split in ("val", "test"):
        before, after = ft.wga_before.get(split), ft.wga_after.get(split)
        if before is not None and after is not None:
            parts.append(f"{split} WGA {pct(before)} → {pct(after)} ({100 * (after - before):+.1f} pp)")
    if not parts:
        return None
    epoch = ft.selection.epoch if ft.selection is not None else None
    return f"fine-tuning (selected epoch {epoch}): " + ", ".join(parts)


def finetune_control_table(summary: RunSummary) -> str | None:
    """ERM, the Stage II recipe, continued ERM (its control) and method − control, when the run
    trained the control (``finetune.control = "continued-erm"``)."""
    from labconsole.engine.train.finetune_summary import format_control_table

    ft = summary.finetune
    if ft is None or ft.control is None:
        return None
    return "Stage II against its control (WGA, %)\n" + format_control_table(ft)
