"""What every screen shares: the mode bar on top, the footer with its keys, job updates."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer

from labconsole.engine.events import Event
from labconsole.ui.widgets.mode_bar import ModeBar

if TYPE_CHECKING:
    from labconsole.ui.app import LabConsoleApp


class LabScreen(Screen[None]):
    MODE: ClassVar[str] = ""
    BINDINGS = [Binding("escape", "leave_field", "Leave field", show=False)]

    @property
    def lab(self) -> LabConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield ModeBar(self.MODE)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> Iterable[Widget]:
        return ()

    def on_mount(self) -> None:
        self.lab.job_signal.subscribe(self, self._job_events)

    def _job_events(self, events: tuple[Event, ...]) -> None:
        self.query_one(ModeBar).show_status(self.lab.job.headline())
        self.on_job_events(events)

    def on_job_events(self, events: tuple[Event, ...]) -> None:
        """Override: new engine events were applied to ``app.job``."""

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.query_one(ModeBar).show_status(self.lab.job.headline())

    def action_leave_field(self) -> None:
        """Escape leaves a text field, so the single-key bindings work again; outside a field it
        stops waiting for a long call on this screen."""
        from textual.widgets import Input

        if isinstance(self.focused, Input):
            self.set_focus(None)
            return
        self.set_focus(None)
        from labconsole.ui.widgets.busy_line import BusyLine

        for line in self.query(BusyLine):
            if line.cancel():
                self.lab.write_log(f"[info] stopped waiting for {line.what}")
