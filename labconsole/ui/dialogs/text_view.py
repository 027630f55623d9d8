"""Read-only views: a run summary, a comparison, the console log."""

from __future__ import annotations

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from labconsole.ui.widgets.log_pane import LogPane


class TextDialog(ModalScreen[None]):
    """Any Rich renderable in a scrollable box; Escape or q closes it."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, body: RenderableType) -> None:
        super().__init__()
        self.title_text, self.body = title, body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll():
                yield Static(self.body)
            yield Label("Esc close", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)


class LogDialog(ModalScreen[None]):
    """Everything the console logged this session: engine log records, errors, job starts."""

    BINDINGS = [Binding("escape,q,l", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Log", classes="dialog-title")
            yield LogPane(id="log-view")  # wraps to the dialog's width, live
            yield Label("Esc close", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
