"""The console's log, live: engine log records, job starts/ends, errors.

Lines wrap to the pane's width. A RichLog wraps a line when it is written, so lines written
before the pane had a size (or while its tab was hidden) are written again on every resize.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.widgets import RichLog

REPLAYED = 200  # lines written again after a resize


class LogPane(RichLog):
    DEFAULT_CSS = """
    LogPane { height: 1fr; border: round $panel-lighten-2; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(wrap=True, markup=False, max_lines=1000, min_width=0, **kwargs)
        self._width = 0

    def on_mount(self) -> None:
        app: Any = self.app
        app.log_signal.subscribe(self, self._live)

    def _live(self, line: str) -> None:
        if self._width:  # before the pane has a width, the next resize writes it
            self.write(line)

    def on_resize(self, event: events.Resize) -> None:
        super().on_resize(event)
        width = self.scrollable_content_region.width
        if width and width != self._width:
            self._width = width
            self.clear()
            app: Any = self.app
            for line in list(app.log_lines)[-REPLAYED:]:
                self.write(line, width=width)
