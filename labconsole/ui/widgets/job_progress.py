"""Progress of the running job: a status line, a bar, and a sparkline of recent losses."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Sparkline, Static

from labconsole.ui.job_state import JobState


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class JobProgress(Vertical):
    DEFAULT_CSS = """
    JobProgress { height: auto; }
    JobProgress #progress-line { height: auto; max-height: 2; }
    JobProgress ProgressBar { height: 1; }
    JobProgress Sparkline { height: 2; }
    """

    def __init__(self, *, show_times: bool = True, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.show_times = show_times  # off in screenshots: no clock, no ETA

    def compose(self) -> ComposeResult:
        yield Static("No job yet.", id="progress-line")
        yield ProgressBar(total=None, show_eta=False, id="progress-bar")
        yield Sparkline([], id="loss-sparkline")

    def show(self, job: JobState) -> None:
        line = self.query_one("#progress-line", Static)
        bar = self.query_one("#progress-bar", ProgressBar)
        progress = job.progress
        if progress is None:
            line.update(
                f"{job.label}: {'cancelling…' if job.status == 'cancelling' else job.status}"
                if job.label
                else "No job yet."
            )
            if not job.active:
                bar.update(total=100, progress=100 if job.status == "done" else 0)
            return
        total = max(progress.total_epochs * progress.total_steps, 1)
        done = (progress.epoch - 1) * progress.total_steps + progress.step
        parts = [
            f"{progress.stage}",
            f"epoch {progress.epoch}/{progress.total_epochs}",
            f"step {progress.step}/{progress.total_steps}",
        ]
        if progress.loss is not None:
            parts.append(f"loss {progress.loss:.4f}")
        if self.show_times and job.active:
            parts.append(f"elapsed {format_seconds(progress.elapsed_s)}")
            if progress.eta_s is not None:
                parts.append(f"ETA {format_seconds(progress.eta_s)}")
        if job.status == "cancelling":  # the engine stops at its next check, e.g. after an evaluation
            parts.insert(0, "cancelling…")
        elif not job.active:
            parts.insert(0, job.status)
        line.update(" · ".join(parts))
        bar.update(total=total, progress=total if job.status == "done" else min(done, total))
        if progress.recent_losses:
            self.query_one("#loss-sparkline", Sparkline).data = list(progress.recent_losses)
