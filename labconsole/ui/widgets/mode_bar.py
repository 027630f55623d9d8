"""The one-line bar at the top: which screen is shown, the keys for the others, the job status."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

# (mode name, key, label) in the order the bar shows them.
MODES: tuple[tuple[str, str, str], ...] = (
    ("setup", "1", "Setup"),
    ("neurons", "2", "Neurons"),
    ("interventions", "3", "Interventions"),
    ("train", "4", "Train"),
    ("rare", "5", "Rare lab"),
    ("runs", "6", "Runs"),
)


SHORT = {"Neurons": "Neur.", "Interventions": "Interv.", "Rare lab": "Rare"}
NARROW = 110  # below this width the bar uses the short labels


def mode_labels(current: str, short: bool = False) -> Text:
    bar = Text(no_wrap=True, overflow="ellipsis")
    for mode, key, label in MODES:
        label = SHORT.get(label, label) if short else label
        # one space between entries: all six fit in 60 columns, leaving room for the job status
        if mode == current:
            bar.append(f"{key} {label}", style="bold reverse")
        else:
            bar.append(key, style="bold")
            bar.append(f" {label}")
        bar.append(" ")
    return bar


class ModeBar(Horizontal):
    """Mode keys on the left, the running job's status on the right (no clock, no ETA)."""

    DEFAULT_CSS = """
    ModeBar { height: 1; background: $panel; }
    ModeBar #modes { width: 1fr; height: 1; color: $text-muted; padding-left: 1; }
    ModeBar #job-status { width: auto; max-width: 32; height: 1; color: $accent; text-style: bold;
                          padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        yield Static(mode_labels(self.current), id="modes")
        yield Static("", id="job-status")

    def on_mount(self) -> None:
        job = getattr(self.app, "job", None)
        self.show_status(job.headline() if job is not None else "")

    def on_resize(self) -> None:
        self.query_one("#modes", Static).update(mode_labels(self.current, self.size.width < NARROW))

    def show_status(self, status: str) -> None:
        self.query_one("#job-status", Static).update(status)
