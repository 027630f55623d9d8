"""The examples an intervention flipped: per group and split how many went right → wrong and
wrong → right, and the flipped minority *training* images in half blocks (two pixel rows per
text row), so a reader can see what the critical neurons held.

The counts and ids come with the readout's layer-matched control (``SessionPort.
matched_control``: ``flips``); the images from the session's tensor cache by id
(``SessionPort.example_images``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from labconsole.ui.engine_port import ImagePixels
from labconsole.ui.widgets.thumbnails import fitting, thumbnail_rows

if TYPE_CHECKING:  # a pydantic record, built where the evidence is read
    from labconsole.engine.records import GroupFlips

SPLITS = ("train", "test")
DIRECTIONS = (("to_wrong", "✓→✗"), ("to_right", "✗→✓"))
THUMBNAIL_SIZE = 10  # pixels a side: 10 columns × 5 rows of text
PREVIEW_ROWS = 2  # rows of thumbnails per group and direction
# The dialog's width is 90 % of the screen, less its border (2), padding (4) and the
# scroll bar of its scrolling part (2).
FRAME = 8

Flips = Mapping[str, Mapping[str, "GroupFlips"]]  # split → group → its flips


def preview_ids(flips: Flips, minority: Sequence[str], limit: int) -> dict[tuple[str, str], list[int]]:
    """(group, direction) → the first ``limit`` flipped training ids of each minority group."""
    train = flips.get("train") or {}
    out: dict[tuple[str, str], list[int]] = {}
    for group in minority:
        for direction, _ in DIRECTIONS:
            entry = train.get(group)
            ids = [int(i) for i in (getattr(entry, direction) if entry is not None else [])[:limit]]
            if ids:
                out[(group, direction)] = ids
    return out


def preview_limit(screen_width: int) -> int:
    """How many thumbnails of one group and direction the dialog shows at this screen width."""
    inner = int(screen_width * 0.9) - FRAME
    return fitting(inner, THUMBNAIL_SIZE) * PREVIEW_ROWS


def counts_table(flips: Flips, groups: Sequence[str], minority: set[str]) -> Table:
    """Per group: ``n`` flipped of the group's examples, each split and direction."""
    table = Table(box=None, pad_edge=False, padding=(0, 1))
    table.add_column("group", no_wrap=True)
    table.add_column("", no_wrap=True)
    for split in SPLITS:
        if split in flips:
            for _, arrow in DIRECTIONS:
                table.add_column(f"{split} {arrow}", justify="right", no_wrap=True)
    for group in groups:
        cells: list[str | Text] = [group, Text("min", style="bold yellow") if group in minority else "maj"]
        for split in SPLITS:
            if split not in flips:
                continue
            entry = (flips.get(split) or {}).get(group)
            for direction, _ in DIRECTIONS:
                cells.append("–" if entry is None else f"{getattr(entry, f'n_{direction}')}/{entry.n}")
        table.add_row(*cells)
    return table


class FlippedExamplesDialog(ModalScreen[None]):
    """Flip counts, then each minority group's flipped training images; Escape, q or f closes."""

    BINDINGS = [Binding("escape,q,f", "close", "Close")]

    def __init__(
        self,
        flips: Flips,
        groups: Sequence[str],
        minority: set[str],
        images: Mapping[tuple[str, str], Sequence[ImagePixels]],
        what: str = "",
    ) -> None:
        super().__init__()
        self.flips, self.groups, self.minority = flips, list(groups), set(minority)
        self.images = dict(images)
        self.what = what  # the readout, e.g. "zero on 3 neurons"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="flipped-examples"):
            yield Static(
                "Flipped examples" + (f" of {self.what}" if self.what else "") + " (flipped / group size)",
                classes="dialog-title",
            )
            with VerticalScroll():
                yield Static(counts_table(self.flips, self.groups, self.minority), id="flip-counts")
                yield from self._previews()
            yield Static("✓→✗ right before, wrong after · ✗→✓ the reverse · Esc close", classes="dialog-hint")

    def _previews(self) -> ComposeResult:
        train = self.flips.get("train") or {}
        per_row = fitting(int(self.app.size.width * 0.9) - FRAME, THUMBNAIL_SIZE)
        minority = [g for g in self.groups if g in self.minority]
        if not minority:
            yield Static("no minority group: no training images to preview", classes="flip-label")
            return
        for group in minority:
            entry = train.get(group)
            for direction, arrow in DIRECTIONS:
                shown = self.images.get((group, direction), [])
                total = int(getattr(entry, f"n_{direction}")) if entry is not None else 0
                if not total and direction == "to_right":
                    continue  # nothing went the unusual way: no empty line for it
                label = f"{group} (train) {arrow}: {total} flipped" + (
                    f", first {len(shown)} shown" if shown and len(shown) < total else ""
                )
                yield Static(label, classes="flip-label")
                if shown:
                    yield Static(thumbnail_rows(shown, per_row), classes="flip-images")

    def action_close(self) -> None:
        self.dismiss(None)
