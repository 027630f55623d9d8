"""All threading between the console and the engine lives here.

* Long jobs (training, the rare lab) run in one Textual thread worker. The engine gets
  ``emit`` (thread-safe: pushes into a coalescing buffer) and ``cancel`` (the worker's
  ``cancelled_event``, a ``threading.Event``).
* Interactive calls (rank, readout, dataset check, list runs) run in their own thread workers;
  a newer call in the same group supersedes an older one, whose result is then dropped. A call
  that counts its work gets a ``progress(done, total)`` (``ProgressRelay``): the latest count
  reaches the UI thread, one message at a time, and none once the console stopped waiting.
* Every failure in either kind of worker ends up in one place, ``App.report_error``: a
  notification plus a log line, never a crash.

Why a buffer rather than one message per event: the engine may emit far faster than the
screen can draw. Only a ``Progress`` of the same run and stage may replace an earlier one
(``Progress.can_replace``); every other event is delivered, in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.worker import Worker, get_current_worker

from labconsole.engine.events import CancelToken, Emit, Event, Progress
from labconsole.errors import UserError

if TYPE_CHECKING:
    from textual.app import App


class EventBuffer:
    """Events from the engine thread waiting for the UI thread, with Progress coalesced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self.pushed = 0
        self.coalesced = 0

    def push(self, event: Event) -> bool:
        """Add an event; True when the buffer was empty, i.e. the UI must be told to drain it."""
        with self._lock:
            self.pushed += 1
            was_empty = not self._events
            if isinstance(event, Progress):
                for i in range(len(self._events) - 1, -1, -1):
                    if event.can_replace(self._events[i]):
                        # Drop the stale one and append: later events keep their order.
                        del self._events[i]
                        self.coalesced += 1
                        break
            self._events.append(event)
            return was_empty

    def drain(self) -> list[Event]:
        with self._lock:
            events, self._events = self._events, []
            return events


class EngineMessage(Message):
    """Engine events are waiting in the bridge's buffer (posted once per non-empty buffer)."""


class JobEnded(Message):
    """The job thread has returned (finished, cancelled, or failed)."""

    def __init__(self, kind: str, result: Any, error: BaseException | None) -> None:
        super().__init__()
        self.kind = kind
        self.result = result
        self.error = error


class CallFinished(Message):
    """An interactive call returned; ``callback(result)`` runs on the UI thread."""

    def __init__(self, worker: Worker[Any], callback: Callable[[Any], None], result: Any) -> None:
        super().__init__()
        self.worker = worker
        self.callback = callback
        self.result = result


class ProgressRelay:
    """``progress(done, total)`` for one interactive call, called on its worker thread.

    Only the latest count matters: at most one ``CallProgress`` message waits for the UI thread
    at a time (an engine counting fast never floods the queue), and counts of a call the console
    stopped waiting for (Esc, or superseded by a newer call) are dropped on both sides."""

    def __init__(self, app: App[Any], show: Callable[[int, int], None]) -> None:
        self.app = app
        self.show = show
        self.worker: Worker[Any] | None = None  # set once the call's worker runs
        self._lock = threading.Lock()
        self._latest: tuple[int, int] | None = None
        self._waiting = False

    def __call__(self, done: int, total: int) -> None:
        if self.worker is not None and self.worker.is_cancelled:
            return
        with self._lock:
            self._latest = (int(done), int(total))
            if self._waiting:
                return
            self._waiting = True
        self.app.post_message(CallProgress(self))

    def deliver(self) -> None:
        """On the UI thread: show the latest count, unless the call was given up meanwhile."""
        with self._lock:
            latest, self._latest, self._waiting = self._latest, None, False
        if latest is not None and not (self.worker is not None and self.worker.is_cancelled):
            self.show(*latest)


class CallProgress(Message):
    """An interactive call counted more of its work; ``relay.deliver()`` shows the latest count."""

    def __init__(self, relay: ProgressRelay) -> None:
        super().__init__()
        self.relay = relay


class CallGivenUp(Message):
    """A call the console stopped waiting for has returned; ``callback(error)`` runs on the UI
    thread (``error``: what it raised, e.g. the engine's ``Cancelled``; None if it finished)."""

    def __init__(self, callback: Callable[[BaseException | None], None], error: BaseException | None) -> None:
        super().__init__()
        self.callback = callback
        self.error = error


class BackgroundError(Message):
    """A worker failed; the app reports it (notification + log line) and carries on."""

    def __init__(
        self, what: str, error: BaseException, on_error: Callable[[BaseException], None] | None = None
    ) -> None:
        super().__init__()
        self.what = what
        self.error = error
        self.on_error = on_error  # the caller's own handler, e.g. a status line on its screen


@dataclass
class JobHandle:
    kind: str  # "train" | "rare"
    label: str
    worker: Worker[Any]


class Bridge:
    """Owns the job worker and the interactive-call workers of one app."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.buffer = EventBuffer()
        self.job: JobHandle | None = None

    # -- events from the engine thread ---------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Thread-safe; handed to the engine as its ``emit``."""
        if self.buffer.push(event):
            self.app.post_message(EngineMessage())

    def drain(self) -> list[Event]:
        return self.buffer.drain()

    # -- the long job ----------------------------------------------------------------------------
    @property
    def job_running(self) -> bool:
        return self.job is not None

    @property
    def job_cancelling(self) -> bool:
        return self.job is not None and self.job.worker.cancelled_event.is_set()

    def start_job(self, kind: str, label: str, work: Callable[[Emit, CancelToken], Any]) -> Worker[Any]:
        """Run ``work(emit, cancel)`` in the job worker. One job at a time."""
        if self.job is not None:
            raise UserError(f"a job is already running ({self.job.label}); cancel it first with c on the Train screen")

        def body() -> Any:
            worker = get_current_worker()
            result: Any = None
            error: BaseException | None = None
            try:
                result = work(self.emit, worker.cancelled_event)
            except BaseException as exc:  # reported by the app, never raised into Textual
                error = exc
            self.app.post_message(JobEnded(kind, result, error))
            return result

        worker = self.app.run_worker(body, name=f"job:{label}", group="job", thread=True, exit_on_error=False)
        self.job = JobHandle(kind, label, worker)
        return worker

    def cancel_job(self) -> bool:
        """Ask the job to stop (it saves what it has). False when no job runs."""
        if self.job is None:
            return False
        # Set the engine's token directly: Worker.cancel() would also mark the worker
        # cancelled at once, although the thread only stops at its next check.
        self.job.worker.cancelled_event.set()
        return True

    def job_ended(self) -> JobHandle | None:
        handle, self.job = self.job, None
        return handle

    # -- interactive calls -----------------------------------------------------------------------
    def call(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None],
        group: str | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        on_given_up: Callable[[BaseException | None], None] | None = None,
        **kwargs: Any,
    ) -> Worker[Any]:
        """Run ``fn(*args, **kwargs)`` off the UI thread, then ``on_result(result)`` on it.

        A failure is reported by the app (notification + log) and, with ``on_error``, also handed
        to the caller on the UI thread, so the screen that asked can say what went wrong in place.

        With a ``group``, a newer call supersedes an older one still running (its result is
        dropped), so a burst of keypresses only ever shows the latest answer.

        With ``on_progress``, ``fn`` also gets ``progress=`` (a ``ProgressRelay``): its
        ``(done, total)`` counts reach ``on_progress`` on the UI thread while the call runs.
        ``on_given_up(error)`` runs on the UI thread once ``fn`` has really returned (or raised:
        ``error``) after the console stopped waiting for it: the work is over, not just ignored.
        """
        relay = None
        if on_progress is not None:
            relay = ProgressRelay(self.app, on_progress)
            kwargs["progress"] = relay

        def body() -> Any:
            worker = get_current_worker()
            if relay is not None:
                relay.worker = worker
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                if not worker.is_cancelled:
                    self.app.post_message(BackgroundError(what, exc, on_error))
                elif on_given_up is not None:
                    self.app.post_message(CallGivenUp(on_given_up, exc))
                return None
            if not worker.is_cancelled:
                self.app.post_message(CallFinished(worker, on_result, result))
            elif on_given_up is not None:
                self.app.post_message(CallGivenUp(on_given_up, None))
            return result

        return self.app.run_worker(
            body, name=what, group=group or "call", thread=True, exclusive=group is not None, exit_on_error=False
        )

    def progress_in_call(self, show: Callable[[int, int], None]) -> ProgressRelay:
        """On the worker of a running call: another ``progress(done, total)`` for a second kind
        of work the call counts (a readout's chunks, then its matched control's draws). Its
        counts reach ``show`` on the UI thread after the ones sent before them (one message
        queue), and none once the console stopped waiting for the call."""
        relay = ProgressRelay(self.app, show)
        relay.worker = get_current_worker()
        return relay


def describe_error(what: str, error: BaseException) -> str:
    """One line for people: a UserError's own message, otherwise the exception type and text."""
    if isinstance(error, UserError):
        return f"{what}: {error}"
    text = str(error) or type(error).__name__
    return f"{what} failed: {type(error).__name__}: {text}" if str(error) else f"{what} failed: {text}"
