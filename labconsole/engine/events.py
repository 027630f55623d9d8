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
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from labconsole.engine.records.sections import Readout

# A split's metrics, as stored in summary.json and EpochResult:
# {"groups": {name: acc}, "wga": float, "worst_group": name, "mean": float,
#  "mean_train_weighted": float, "mean_groups": float, "wga_quantum": float, "n": int,
#  "group_counts": {name: int}}
SplitMetrics = dict[str, Any]


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

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, **dataclasses.asdict(self)}


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
    stage: str
    epoch: int
    total_epochs: int
    splits: dict[str, SplitMetrics]
    train_loss: float | None = None
    lr: float | None = None
    is_best: bool = False
    best_epoch: int | None = None
    selection: str = "best val WGA"


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

    def to_dict(self) -> dict[str, Any]:
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
    status: str  # "done" | "cancelled" | "failed"
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


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
