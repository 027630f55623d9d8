"""Compact labelled form rows, so a whole form fits in 80×24."""

from __future__ import annotations

from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label


class FieldRow(Horizontal):
    """``label  [widget]`` on one line."""

    DEFAULT_CSS = """
    FieldRow { height: auto; }
    FieldRow > .field-label { width: 12; height: 1; color: $text-muted; }
    """

    def __init__(self, label: str, *widgets: Widget, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(Label(label, classes="field-label"), *widgets, id=id, classes=classes)


def parse_number(text: str, *, kind: type = float, minimum: float | None = None) -> float | int | None:
    """A number typed by a person, or None when it is not one (or below ``minimum``)."""
    try:
        value: float | int = kind(text.strip())
    except ValueError:
        return None
    if minimum is not None and value < minimum:
        return None
    return value


def parse_int_list(text: str) -> list[int] | None:
    """``"0, 1, 3"`` → ``[0, 1, 3]``; None when any item is not a non-negative integer."""
    items = [item.strip() for item in text.replace(";", ",").split(",") if item.strip()]
    try:
        values = [int(item) for item in items]
    except ValueError:
        return None
    return values if values and all(v >= 0 for v in values) else None
