"""A one-line choice field: the current value, ← → to step through the options, Enter for a list.

Why not Textual's ``Select``: each one is a small tree of widgets with a good deal of CSS, and
styling five of them was most of the Setup screen's time to first paint. ``Choice`` is a single
widget; the option list exists only while it is open (``ChoiceDialog``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget

Option = tuple[str, Any]  # (label shown, value)


class Choice(Widget, can_focus=True):
    DEFAULT_CSS = """
    Choice { height: 1; width: 1fr; background: $boost; color: $text; }
    Choice:focus { background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold; }
    """
    BINDINGS = [
        Binding("enter,space", "open", "Choose", show=False),
        Binding("right", "step(1)", "Next", show=False),
        Binding("left", "step(-1)", "Previous", show=False),
    ]

    class Changed(Message):
        """The value changed (by a key, the list, or code)."""

        def __init__(self, choice: Choice, value: Any) -> None:
            super().__init__()
            self.choice = choice
            self.value = value

        @property
        def control(self) -> Choice:
            return self.choice

    def __init__(
        self,
        options: Iterable[Option],
        value: Any = None,
        *,
        title: str = "",
        prompt: str = "",
        id: str | None = None,
        classes: str | None = None,
        tooltip: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._options: list[Option] = list(options)
        self.title = title  # the list's heading
        self.prompt = prompt  # shown while there are no options
        self._value: Any = value if self._index_of(value) is not None else self._first_value()
        if tooltip:
            self.tooltip = tooltip

    # -- value and options ---------------------------------------------------------------------
    @property
    def options(self) -> list[Option]:
        return list(self._options)

    @property
    def value(self) -> Any:
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        if self._index_of(value) is None:
            raise ValueError(f"{value!r} is not one of the options of {self.id or 'this field'}")
        self._set(value)

    def set_options(self, options: Sequence[Option]) -> None:
        """Replace the options; the value is kept when it is still offered, else the first one."""
        self._options = list(options)
        self._set(self._value if self._index_of(self._value) is not None else self._first_value())
        self.refresh()

    def _first_value(self) -> Any:
        return self._options[0][1] if self._options else None

    def _index_of(self, value: Any) -> int | None:
        return next((i for i, (_, v) in enumerate(self._options) if v == value), None)

    def _set(self, value: Any) -> None:
        changed = value != self._value
        self._value = value
        self.refresh()
        if changed:
            self.post_message(self.Changed(self, value))

    @property
    def label(self) -> str:
        index = self._index_of(self._value)
        return self._options[index][0] if index is not None else self.prompt

    # -- drawing and keys ----------------------------------------------------------------------
    def render(self) -> Text:
        # the keys that work here, only where they work; never cut off by a long label
        hint = " ◂▸ ⏎" if self.has_focus and len(self._options) > 1 else ""
        label, width = self.label, self.content_size.width
        if hint and width and len(label) + len(hint) > width:
            label = label[: max(1, width - len(hint) - 1)] + "…"
        text = Text(label, no_wrap=True, overflow="ellipsis")
        if hint:
            text.append(hint, style="dim")
        return text

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def action_step(self, delta: int) -> None:
        if not self._options:
            return
        index = self._index_of(self._value)
        self._set(self._options[((index or 0) + delta) % len(self._options)][1])

    def action_open(self) -> None:
        if not self._options:
            return

        def picked(value: Any) -> None:
            if value is not None and self._index_of(value) is not None:
                self._set(value)
            self.focus()

        self.app.push_screen(ChoiceDialog(self.title or "Choose", self._options, self._value), picked)

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.focus()
        self.action_open()


class ChoiceDialog(ModalScreen[Any]):
    """The option list of a ``Choice``: Enter picks, Escape keeps the current value."""

    DEFAULT_CSS = """
    ChoiceDialog { align: center middle; }
    ChoiceDialog > Vertical { width: 60; max-width: 90%; height: auto; max-height: 80%;
                              border: round $primary; background: $surface; padding: 0 1; }
    ChoiceDialog Label { text-style: bold; }
    ChoiceDialog OptionList, ChoiceDialog OptionList:focus { height: auto; max-height: 16; border: none;
                                                            padding: 0; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Keep")]

    def __init__(self, title: str, options: Sequence[Option], current: Any) -> None:
        super().__init__()
        self.title_text, self.choices, self.current = title, list(options), current

    def compose(self) -> ComposeResult:
        from textual.containers import Vertical
        from textual.widgets import Label, OptionList

        with Vertical():
            yield Label(self.title_text)
            yield OptionList(*(label for label, _ in self.choices))

    def on_mount(self) -> None:
        from textual.widgets import OptionList

        options = self.query_one(OptionList)
        index = next((i for i, (_, v) in enumerate(self.choices) if v == self.current), 0)
        options.highlighted = index
        options.focus()

    def on_option_list_option_selected(self, event: Any) -> None:
        self.dismiss(self.choices[event.option_index][1])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
