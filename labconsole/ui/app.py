"""The console app: modes (one per screen), shared state, and the bridge's message handlers.

Thin on purpose: screens own their widgets, ``bridge.py`` owns the threads, the engine is an
``EnginePort`` (``create_app(FakeEngine())`` in tests). Nothing here imports torch or the engine
proper, so the first screen paints quickly.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from labconsole.engine.events import CancelToken, Emit, EpochResult, Event, LogRecord, RunFinished
from labconsole.errors import UserError
from labconsole.ui.bridge import (
    BackgroundError,
    Bridge,
    CallFinished,
    CallGivenUp,
    CallProgress,
    EngineMessage,
    JobEnded,
    describe_error,
)
from labconsole.ui.engine_port import EnginePort, LayerInfo, NeuronRef, SessionPort, SessionSpec, create_real_engine
from labconsole.ui.job_state import CANCELLING, JobState, log_line
from labconsole.ui.screens.setup import SetupScreen
from labconsole.ui.widgets.mode_bar import MODES as MODE_KEYS

if TYPE_CHECKING:
    from labconsole.engine.stage1.session_record import SessionRecord

THEME = "textual-dark"  # fixed, so screenshots do not depend on the user's settings


def lazy_screen(module: str, name: str) -> Callable[[], Screen[None]]:
    """A mode's screen, imported when the mode is first shown: only Setup is built (and its
    modules imported) before the first paint; the chart library, tables and trees come later."""

    def make() -> Screen[None]:
        screen = getattr(importlib.import_module(f"labconsole.ui.screens.{module}"), name)()
        if not isinstance(screen, Screen):
            raise TypeError(f"labconsole.ui.screens.{module}.{name}() is not a Screen")
        return screen

    return make


class LabConsoleApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "labconsole"
    ENABLE_COMMAND_PALETTE = False
    MODES = {
        "setup": SetupScreen,
        "neurons": lazy_screen("neurons", "NeuronsScreen"),
        "interventions": lazy_screen("interventions", "InterventionsScreen"),
        "train": lazy_screen("train", "TrainScreen"),
        "rare": lazy_screen("rare", "RareScreen"),
        "runs": lazy_screen("runs", "RunsScreen"),
    }
    BINDINGS = [
        *(Binding(key, f"switch_mode('{mode}')", label, show=False) for mode, key, label in MODE_KEYS),
        *(
            Binding(f"f{i}", f"switch_mode('{mode}')", show=False, priority=True)
            for i, (mode, _, _) in enumerate(MODE_KEYS, start=1)
        ),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("l", "show_log", "Log"),
    ]

    def __init__(self, engine: EnginePort | None = None, *, deterministic: bool = False, runs_root: str = "runs"):
        super().__init__()
        self.theme = THEME
        self._engine = engine
        # Screenshots and tests: no ETA/elapsed text, no animations.
        self.deterministic = deterministic
        self.runs_root = runs_root
        self.bridge = Bridge(self)
        self.job = JobState()
        self.spec = SessionSpec()
        self.session: SessionPort | None = None
        self.layers: list[LayerInfo] = []
        self.marked: list[NeuronRef] = []
        self.log_lines: deque[str] = deque(maxlen=2000)
        self.job_signal: Signal[tuple[Event, ...]] = Signal(self, "job")
        self.job_end_signal: Signal[JobEnded] = Signal(self, "job-end")
        self.session_signal: Signal[SessionPort | None] = Signal(self, "session")
        self.marks_signal: Signal[list[NeuronRef]] = Signal(self, "marks")
        # The session's record on disk (runs/<stamp>-console-session-s0/): every ranking and
        # readout is appended to it, and reopening the same model brings its history back.
        self.record: SessionRecord | None = None
        # what was computed before the record was open (the first ranking races its opening)
        self._unrecorded: list[Callable[[SessionRecord], dict[str, Any]]] = []
        # The latest ranking shown on Neurons ({"criterion", "group", "scope", "k", "neurons"}):
        # a readout of neurons marked from it is recorded with the ranking it came from.
        self.last_ranking: dict[str, Any] | None = None
        self.record_signal: Signal[SessionRecord | None] = Signal(self, "record")
        self.log_signal: Signal[str] = Signal(self, "log")
        self.created_at = time.perf_counter()
        self.first_paint_s: float | None = None
        self._after_paint: list[Callable[[], Any]] = []
        self._quit_after_job = False
        self._last_error = ""

    @property
    def engine(self) -> EnginePort:
        if self._engine is None:
            self._engine = create_real_engine(self.runs_root)
        return self._engine

    async def on_mount(self) -> None:
        if self.deterministic:
            self.animation_level = "none"
        await self.switch_mode("setup")
        self.call_after_refresh(self._painted)

    def on_unmount(self) -> None:
        # However the console closes, a running job is told to stop and save.
        self.bridge.cancel_job()

    def _painted(self) -> None:
        self.first_paint_s = time.perf_counter() - self.created_at
        waiting, self._after_paint = self._after_paint, []
        for callback in waiting:
            callback()

    def after_first_paint(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` once the first screen is on the terminal (now, if it already is):
        background work started earlier (reading runs/, importing the engine in a thread)
        competes with the first paint for the interpreter."""
        if self.first_paint_s is None:
            self._after_paint.append(callback)
        else:
            callback()

    # -- shared state --------------------------------------------------------------------------
    def set_session(self, session: SessionPort | None, layers: list[LayerInfo]) -> None:
        if self.session is not None and self.session is not session:
            self.bridge.call("Closing the session", self.session.close, on_result=lambda _: None)
        self.session, self.layers = session, layers
        self.record = None
        self._unrecorded = []
        self.set_marked([])
        self.session_signal.publish(session)
        if session is not None:
            self._open_record(session)

    def _open_record(self, session: SessionPort) -> None:
        from labconsole.engine.records import SessionSetup
        from labconsole.engine.stage1.session_record import SessionRecord

        spec = self.spec
        model = SessionSetup(
            dataset=spec.dataset,
            backbone=spec.backbone,
            checkpoint=spec.checkpoint,
            data_root=spec.data_root,
            device=spec.device,
        )

        def opened(record: SessionRecord) -> None:
            if self.session is not session:  # another session was opened meanwhile
                return
            self.record = record
            earlier = len(record.entries())
            waiting, self._unrecorded = self._unrecorded, []
            for write in waiting:
                self.record_result(write)
            self.write_log(
                f"[info] session record {record.path}"
                + (f": {earlier} earlier rankings/readouts of this model reopened" if earlier else " (new)")
            )
            self.record_signal.publish(record)

        self.bridge.call(
            "Opening the session record",
            SessionRecord.open_or_create,
            self.runs_root,
            model,
            list(session.group_names),
            dict(session.train_group_counts),
            on_result=opened,
            group="session-record",
        )

    def record_result(self, write: Callable[[SessionRecord], dict[str, Any]]) -> dict[str, Any] | None:
        """Append a ranking or readout to the session record (``write(record)``: a one-line
        append, done here so lines keep their order); a failure to write is reported, never fatal."""
        if self.record is None:
            if self.session is not None:  # the record is still opening: written once it is
                self._unrecorded.append(write)
            return None
        try:
            return write(self.record)
        except (OSError, ValueError) as exc:
            self.report_error("Recording the session", exc)
            return None

    def set_marked(self, neurons: list[NeuronRef]) -> None:
        self.marked = list(dict.fromkeys(neurons))  # unique, in marking order
        self.marks_signal.publish(self.marked)

    def write_log(self, line: str) -> None:
        self.log_lines.append(line)
        self.log_signal.publish(line)

    def report_error(self, what: str, error: BaseException) -> None:
        """The one place failures end up: a notification and a log line; the app carries on."""
        message = describe_error(what, error)
        self.write_log(f"[error] {message}")
        if not isinstance(error, UserError):
            for line in traceback.format_exception(error)[-6:]:
                self.write_log(line.rstrip())
        self._notify_error(message)

    def _notify_error(self, message: str) -> None:
        if message != self._last_error:
            self._last_error = message
            self.notify(message, title="Error", severity="error", timeout=10)

    # -- jobs ----------------------------------------------------------------------------------
    def start_job(
        self,
        kind: str,
        label: str,
        work: Callable[[Emit, CancelToken], Any],
        *,
        history: list[EpochResult] | None = None,
        run_dir: str = "",
    ) -> bool:
        """``history``/``run_dir``: a resume's recorded epochs and run, shown from the start."""
        try:
            self.bridge.start_job(kind, label, work)
        except UserError as exc:
            self.report_error("Start", exc)
            return False
        self._last_error = ""
        self.job.start(kind, label, history, run_dir)
        if run_dir:
            self.job.run_dir = run_dir
        self.write_log(f"[info] started {label}")
        self.job_signal.publish(())
        return True

    def cancel_job(self) -> None:
        if self.bridge.cancel_job():
            self.job.status = CANCELLING
            self.write_log("[info] cancelling; the run is saved before it stops")
            self.job_signal.publish(())

    def on_engine_message(self, message: EngineMessage) -> None:
        events = tuple(self.bridge.drain())
        for event in events:
            self.job.apply(event)
            if isinstance(event, LogRecord):
                self.write_log(log_line(event))
                if event.level == "error":
                    self._notify_error(event.message)
                elif event.level == "warning":
                    self.notify(event.message, severity="warning")
            elif isinstance(event, RunFinished):
                self.write_log(f"[info] run {event.status}" + (f": {event.error}" if event.error else ""))
                if event.status == "failed" and not self._last_error:  # once per job is enough
                    self._notify_error(f"run failed: {event.error}" if event.error else "run failed")
        if events:
            self.job_signal.publish(events)

    def on_job_ended(self, message: JobEnded) -> None:
        handle = self.bridge.job_ended()
        if message.kind == "train" and self.job.run_dir:
            self._reload_history(self.job.run_dir)
        if message.error is not None:
            self.report_error(handle.label if handle else "Job", message.error)
            if self.job.active:
                self.job.status = "failed"
        elif self.job.active:  # the engine returned without a RunFinished
            self.job.status = "cancelled" if handle and handle.worker.cancelled_event.is_set() else "done"
        self.job_signal.publish(())
        self.job_end_signal.publish(message)
        if self._quit_after_job:
            self.exit(0)

    def _reload_history(self, run_dir: str) -> None:
        """Once a job ends, its views are rebuilt from the run's own record (``metrics.jsonl``),
        so they show every epoch of every attempt, whatever the stream delivered."""
        job = self.job

        def loaded(epochs: list[EpochResult]) -> None:
            if self.job is job and job.run_dir == run_dir and not job.active and epochs:
                job.merge_history(epochs)
                self.job_signal.publish(())

        self.bridge.call("Reading the run's epochs", self.engine.run_epochs, run_dir, on_result=loaded)

    def on_call_finished(self, message: CallFinished) -> None:
        if not message.worker.is_cancelled:
            message.callback(message.result)

    def on_call_progress(self, message: CallProgress) -> None:
        message.relay.deliver()

    def on_call_given_up(self, message: CallGivenUp) -> None:
        message.callback(message.error)

    def on_background_error(self, message: BackgroundError) -> None:
        self.report_error(message.what, message.error)
        if message.on_error is not None:
            message.on_error(message.error)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Bodies catch their own errors; this is the safety net for anything else.
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report_error(event.worker.name or "Background work", event.worker.error)

    # -- actions -------------------------------------------------------------------------------
    def action_show_log(self) -> None:
        from labconsole.ui.dialogs.text_view import LogDialog

        self.push_screen(LogDialog())

    async def action_quit(self) -> None:
        if not self.bridge.job_running:
            self.exit(0)
            return
        from labconsole.ui.dialogs.confirm import ConfirmDialog

        if isinstance(self.screen, ConfirmDialog):
            return

        def answered(quit_now: bool | None) -> None:
            if quit_now:
                self._quit_after_job = True
                self.cancel_job()
                self.notify("Cancelling the job; the console closes once its run is saved.")

        self.push_screen(
            ConfirmDialog(
                "A job is running",
                f"{self.job.label} is still running. Quit anyway? It is cancelled and its run saved first.",
                yes="Cancel job and quit",
                no="Keep running",
            ),
            answered,
        )


def create_app(
    engine: EnginePort | None = None, *, deterministic: bool = False, runs_root: str = "runs"
) -> LabConsoleApp:
    """``engine=None`` uses the real engine, imported on first use (after the first paint)."""
    return LabConsoleApp(engine, deterministic=deterministic, runs_root=runs_root)
