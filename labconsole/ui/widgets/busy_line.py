"""A status line for a long interactive call: what is being computed, step n/N, time so far.

Opening a session, the first gradient ranking and readouts take seconds to tens of seconds; a
bare "…" looks like a hang. While a call runs the line ticks once a second; Escape stops waiting
(the screen drops the result), so the console never has to sit out a call.
"""

from __future__ import annotations

import time
from typing import Any

from textual.timer import Timer
from textual.widgets import Static

from labconsole.ui.widgets.job_progress import format_seconds

CANCEL_HINT = "Esc stops waiting"


def busy_text(
    what: str, elapsed_s: float | None, step: int | None = None, total: int | None = None, unit: str = "step"
) -> str:
    """``"opening … · step 1/2 · 0:03 · Esc stops waiting"``, ``"reading out … · 3/8 chunks · …"``;
    an empty ``unit`` shows the bare count. No clock when ``elapsed_s`` is None (screenshots)."""
    parts = [f"{what}…"]
    if step is not None and total:
        count = f"{min(step, total)}/{total}"
        parts.append(f"step {count}" if unit == "step" else f"{count} {unit}".rstrip())
    if elapsed_s is not None:
        parts.append(format_seconds(elapsed_s))
    parts.append(CANCEL_HINT)
    return " · ".join(parts)


class BusyLine(Static):
    """``begin(what, worker)`` … ``finish(text)``; ``cancel()`` stops waiting for the worker.

    ``advance(step)`` counts the steps of a sequence of calls (open, then list the layers);
    ``report(done, total, unit)`` counts the work inside one call, as the engine reports it
    (``1/4 groups`` of a ranking, ``5/12 chunks`` of a readout)."""

    def __init__(self, content: str = "", *, show_clock: bool = True, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.show_clock = show_clock
        self.what = ""
        self.worker: Any = None
        self.step: int | None = None
        self.total: int | None = None
        self.unit = "step"
        self.stop_text = ""  # what cancel() says instead of "stopped waiting for …"
        self._started = 0.0
        self._timer: Timer | None = None

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def begin(self, what: str, worker: Any = None, *, total: int | None = None, stop_text: str = "") -> None:
        self.what, self.worker, self.total, self.unit, self.stop_text = what, worker, total, "step", stop_text
        self.step = 1 if total else None
        self._started = time.monotonic()
        self.set_class(False, "error-text")
        if self._timer is None:
            self._timer = self.set_interval(1.0, self._tick)
        self._tick()

    def advance(self, step: int, what: str | None = None) -> None:
        if self.unit == "step":  # the engine's own count, once it reports one, is not overwritten
            self.step = step
        if what:
            self.what = what
        self._tick()

    def report(self, done: int, total: int, unit: str) -> None:
        """The engine's own count inside the running call (UI thread; ignored once finished)."""
        if self.worker is None:
            return
        self.step, self.total, self.unit = done, total, unit
        self._tick()

    def finish(self, text: str, *, error: bool = False) -> None:
        self.worker = None
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.set_class(error, "error-text")
        self.update(text)

    def cancel(self) -> bool:
        """Stop waiting (the call's result is dropped); False when nothing was running."""
        if self.worker is None:
            return False
        worker = self.worker
        if hasattr(worker, "cancel"):
            worker.cancel()
        self.finish(self.stop_text or f"stopped waiting for {self.what}; nothing changed")
        return True

    def _tick(self) -> None:
        if self.worker is None:
            return
        elapsed = time.monotonic() - self._started if self.show_clock else None
        self.update(busy_text(self.what, elapsed, self.step, self.total, self.unit))
