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
    stage_total_epochs: int = 0
    progress: Progress | None = None
    # Every training stage of the job so far (ERM, then fine-tuning), in order: a second stage
    # starts its own curve, and the first one stays available.
    stage_epochs: dict[str, list[EpochResult]] = field(default_factory=dict)
    stage_best: dict[str, int] = field(default_factory=dict)
    finished: RunFinished | None = None
    events_applied: int = 0
    progress_applied: int = 0

    # the run directory a resume continues (its earlier epochs are preloaded), else ""
    resumed_dir: str = ""

    def start(self, kind: str, label: str, history: list[EpochResult] | None = None, run_dir: str = "") -> None:
        """Forget the previous job: a new one is about to run. ``history``: the epochs the run
        already recorded (a resume), so the views show the whole run, not just what follows."""
        self.__init__(kind=kind, label=label, status=RUNNING, resumed_dir=run_dir if history else "")  # type: ignore[misc]
        self.merge_history(history or [])

    def merge_history(self, epochs: list[EpochResult]) -> None:
        """Add recorded epochs (``metrics.jsonl``) to what the stream brought: one entry per
        (stage, epoch), the recorded one where both have it; stages keep their order."""
        for event in epochs:
            self._put_epoch(event)

    def _put_epoch(self, event: EpochResult) -> None:
        epochs = self.stage_epochs.setdefault(event.stage, [])
        epochs[:] = [e for e in epochs if e.epoch != event.epoch]
        epochs.append(event)
        epochs.sort(key=lambda e: e.epoch)
        best = event.best_epoch if event.best_epoch is not None else (event.epoch if event.is_best else None)
        if best is not None and event.epoch == epochs[-1].epoch:
            self.stage_best[event.stage] = best

    @property
    def epochs(self) -> list[EpochResult]:
        """The epochs of the current stage."""
        return self.stage_epochs.get(self.stage, [])

    @property
    def best_epoch(self) -> int | None:
        """The selected epoch of the current stage (best validation WGA so far)."""
        return self.stage_best.get(self.stage)

    @property
    def active(self) -> bool:
        return self.status in (RUNNING, CANCELLING)

    def apply(self, event: Event) -> None:
        self.events_applied += 1
        if isinstance(event, RunStarted):
            self.run_id, self.run_dir, self.preset = event.run_id, event.run_dir, event.preset
        elif isinstance(event, StageStarted):
            self.stage, self.stage_total_epochs = event.stage, event.total_epochs
            self.progress = None
            if not self.resumed_dir:  # a resumed stage keeps the epochs it recorded before
                # a stage without epochs (e.g. Stage I readouts) gets no curve
                self.stage_epochs.pop(event.stage, None)
                self.stage_best.pop(event.stage, None)
        elif isinstance(event, Progress):
            self.progress_applied += 1
            self.progress = event
            self.stage = event.stage
        elif isinstance(event, EpochResult):
            self.stage = event.stage
            self._put_epoch(event)
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
        return f"{self.status}: {self.label}"  # the status first: a long label is cut, not it


def log_line(event: LogRecord) -> str:
    return f"[{event.level}] {event.message}"
