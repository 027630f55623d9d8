"""Engine events: frozen snapshots with plain values only (no tensors).

The console renders them; the headless runner prints them; every event is also appended to
the run's ``metrics.jsonl``. Only a ``Progress`` may replace an earlier ``Progress`` of the same
run and stage (``can_replace``), so it carries the full state a widget shows.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

# Records are pydantic models: imported for the annotations only, so that importing the events
# (the console does, before its first paint) does not load pydantic.
if TYPE_CHECKING:
    from labconsole.engine.records.base import Splits
    from labconsole.engine.records.sections import Readout
    from labconsole.engine.records.summary import RunSummary

DEFAULT_SELECTION = "best val WGA"  # how an epoch is selected unless a stage says otherwise


def plain(value: object) -> object:
    """``value`` as JSON-ready data: a record (anything with ``to_json``) as its JSON, tuples as
    lists, mappings and sequences item by item."""
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


@dataclass(frozen=True)
class Event:
    run_id: str

    @property
    def kind(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, object]:
        """The event as a ``metrics.jsonl`` line: ``type`` and every field, records as their JSON."""
        return {"type": self.kind, **{f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}}


@dataclass(frozen=True)
class RunStarted(Event):
    preset: str
    run_dir: str
    stages: tuple[str, ...]
    variant: str = "paper"
    device: str = "cpu"
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StageStarted(Event):
    stage: str
    total_epochs: int = 0


@dataclass(frozen=True)
class Progress(Event):
    """Coalescible: carries everything a progress widget shows."""

    stage: str
    epoch: int
    total_epochs: int
    step: int
    total_steps: int
    loss: float | None = None
    recent_losses: tuple[float, ...] = ()
    elapsed_s: float = 0.0
    eta_s: float | None = None
    message: str = ""

    def can_replace(self, other: Event) -> bool:
        return isinstance(other, Progress) and other.run_id == self.run_id and other.stage == self.stage


@dataclass(frozen=True)
class EpochResult(Event):
    """One epoch's evaluation: per split a ``records.SplitMetrics`` (per-group accuracies, WGA,
    the named means, counts, worst group, WGA quantum)."""

    stage: str
    epoch: int
    total_epochs: int
    splits: Splits
    train_loss: float | None = None
    lr: float | None = None
    is_best: bool = False
    best_epoch: int | None = None
    selection: str = DEFAULT_SELECTION


@dataclass(frozen=True)
class RankingReady(Event):
    criterion: str
    group: str | None
    scope: str
    neurons: tuple[tuple[str, int, float], ...]  # (layer, index, score), best first
    samples_used: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadoutReady(Event):
    """Per-group accuracy after an intervention, next to its baseline and control (the whole
    ``Readout``). Written to ``metrics.jsonl`` as before: its label, mode, neurons, splits and
    control."""

    readout: Readout

    def to_dict(self) -> dict[str, object]:
        r = self.readout
        return {
            "type": self.kind,
            "run_id": self.run_id,
            "label": r.label,
            "mode": r.mode,
            "neurons": [[str(n[0]), int(n[1])] for n in r.neurons],
            "splits": plain(r.splits),
            "control": plain(r.control),
        }


@dataclass(frozen=True)
class ArtifactWritten(Event):
    """A table, figure or checkpoint was written into the run directory."""

    name: str
    path: str
    description: str = ""


@dataclass(frozen=True)
class LogRecord(Event):
    level: str  # "debug" | "info" | "warning" | "error"
    message: str


@dataclass(frozen=True)
class RunFinished(Event):
    """The end of a run. ``summary`` is the run's ``summary.json`` as it was written (a copy: the
    event stays a snapshot); None where no run directory was written (demo engines)."""

    status: str  # "done" | "cancelled" | "failed"
    summary: RunSummary | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        line = super().to_dict()
        if self.summary is None:  # the line as it always read without a summary
            line["summary"] = {}
        return line


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


Emit = Callable[[Event], None]


class NeverCancelled:
    """A cancel token for work nobody can interrupt (tests, scripts)."""

    def is_set(self) -> bool:
        return False


class Throttle:
    """Lets through at most ``rate`` Progress events per second; everything else passes."""

    def __init__(self, emit: Emit, rate: float = 4.0, clock: Callable[[], float] = time.monotonic):
        self._emit = emit
        self._min_gap = 1.0 / rate
        self._clock = clock
        self._last = -1e9

    def __call__(self, event: Event, *, force: bool = False) -> None:
        if isinstance(event, Progress) and not force:
            now = self._clock()
            if now - self._last < self._min_gap:
                return
            self._last = now
        self._emit(event)
