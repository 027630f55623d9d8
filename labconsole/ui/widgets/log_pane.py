"""The console's log, live: engine log records, job starts/ends, errors."""

from __future__ import annotations

from typing import Any

from textual.widgets import RichLog


class LogPane(RichLog):
    DEFAULT_CSS = """
    LogPane { height: 1fr; border: round $panel-lighten-2; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(wrap=True, markup=False, max_lines=1000, **kwargs)

    def on_mount(self) -> None:
        app: Any = self.app
        for line in list(app.log_lines)[-200:]:
            self.write(line)
        app.log_signal.subscribe(self, self.write)
