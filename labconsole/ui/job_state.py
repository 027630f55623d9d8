"""What the console knows about the current (or last) job, rebuilt from engine events.

Screens read this snapshot when they are shown and redraw from it on updates, so a screen
that was not visible while the job streamed still shows everything once you switch to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labconsole.engine.events import (
    EpochResult,
    Event,
    LogRecord,
    Progress,
    RunFinished,
    RunStarted,
    StageStarted,
)

IDLE, RUNNING, CANCELLING = "idle", "running", "cancelling"


@dataclass
class JobState:
    kind: str = ""  # "train" | "rare"
    label: str = ""
    status: str = IDLE  # idle | running | cancelling | done | cancelled | failed
    run_id: str = ""
    run_dir: str = ""
    preset: str = ""
    stage: str = ""
    stage_epochs: int = 0
    progress: Progress | None = None
    epochs: list[EpochResult] = field(default_factory=list)
    best_epoch: int | None = None
    finished: RunFinished | None = None
    events_applied: int = 0
    progress_applied: int = 0

    def start(self, kind: str, label: str) -> None:
        """Forget the previous job: a new one is about to run."""
        self.__init__(kind=kind, label=label, status=RUNNING)  # type: ignore[misc]

    @property
    def active(self) -> bool:
        return self.status in (RUNNING, CANCELLING)

    def apply(self, event: Event) -> None:
        self.events_applied += 1
        if isinstance(event, RunStarted):
            self.run_id, self.run_dir, self.preset = event.run_id, event.run_dir, event.preset
        elif isinstance(event, StageStarted):
            self.stage, self.stage_epochs = event.stage, event.total_epochs
            self.epochs, self.best_epoch, self.progress = [], None, None
        elif isinstance(event, Progress):
            self.progress_applied += 1
            self.progress = event
            self.stage = event.stage
        elif isinstance(event, EpochResult):
            self.epochs.append(event)
            if event.best_epoch is not None:
                self.best_epoch = event.best_epoch
            elif event.is_best:
                self.best_epoch = event.epoch
        elif isinstance(event, RunFinished):
            self.finished = event
            self.status = event.status

    def headline(self) -> str:
        """A short status for the mode bar, e.g. ``● erm 3/20`` (no clock, no ETA)."""
        if self.status == IDLE:
            return ""
        if self.status in (RUNNING, CANCELLING):
            mark = "◌" if self.status == CANCELLING else "●"
            stage = self.stage or self.label
            if self.progress is not None and self.progress.total_epochs:
                return f"{mark} {stage} {self.progress.epoch}/{self.progress.total_epochs}"
            return f"{mark} {stage}"
        return f"{self.label}: {self.status}"


def log_line(event: LogRecord) -> str:
    return f"[{event.level}] {event.message}"
