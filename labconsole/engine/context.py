"""What a pipeline stage gets: the preset, its run directory, emit/cancel, device, shared state."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from labconsole.engine.events import CancelToken, Emit, Event, LogRecord, Progress, Throttle
from labconsole.engine.runs import RunDir

if TYPE_CHECKING:
    from labconsole.presets import Preset


class Cancelled(Exception):
    """Raised inside a stage when the user cancelled; the runner saves and finishes cleanly."""


@dataclass
class StageContext:
    preset: Preset
    run: RunDir
    emit_raw: Emit
    cancel: CancelToken
    device: torch.device
    run_id: str
    # Shared between stages of one run: "dataset" (DatasetBundle), "model" (nn.Module),
    # "checkpoint" (Path of the selected ERM checkpoint), "caches" (split -> TensorCache), ...
    state: dict[str, Any] = field(default_factory=dict)
    stage: str = ""
    _throttle: Throttle | None = None

    def __post_init__(self) -> None:
        self._throttle = Throttle(self._record_and_emit)

    def _record_and_emit(self, event: Event) -> None:
        if not isinstance(event, Progress):  # progress is ephemeral; everything else is kept
            self.run.append_event(event)
        self.emit_raw(event)

    def emit(self, event: Event, *, force: bool = False) -> None:
        assert self._throttle is not None
        self._throttle(event, force=force)

    def log(self, message: str, level: str = "info") -> None:
        self.emit(LogRecord(run_id=self.run_id, level=level, message=message))

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def progress(
        self,
        *,
        epoch: int,
        total_epochs: int,
        step: int,
        total_steps: int,
        started: float,
        loss: float | None = None,
        recent: tuple[float, ...] = (),
        message: str = "",
        force: bool = False,
    ) -> None:
        elapsed = time.monotonic() - started
        done = (epoch - 1) * total_steps + step if total_steps else 0
        total = total_epochs * total_steps
        eta = elapsed / done * (total - done) if done and total else None
        self.emit(
            Progress(
                run_id=self.run_id,
                stage=self.stage,
                epoch=epoch,
                total_epochs=total_epochs,
                step=step,
                total_steps=total_steps,
                loss=loss,
                recent_losses=recent[-200:],
                elapsed_s=elapsed,
                eta_s=eta,
                message=message,
            ),
            force=force,
        )
