"""The one-line choice field used by the forms: keys step through options, Enter opens a list."""

from __future__ import annotations

from textual.app import App, ComposeResult

from labconsole.ui.widgets.choice import Choice, ChoiceDialog

from .helpers import wait_for


class ChoiceApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.changes: list[object] = []

    def compose(self) -> ComposeResult:
        yield Choice([("alpha", 1), ("beta", 2), ("gamma", 3)], 2, title="Letter", id="letter")

    def on_choice_changed(self, event: Choice.Changed) -> None:
        self.changes.append(event.value)


async def test_arrows_step_through_the_options_and_wrap_around() -> None:
    app = ChoiceApp()
    async with app.run_test() as pilot:
        choice = app.query_one(Choice)
        choice.focus()
        await pilot.press("right")
        assert choice.value == 3 and choice.label == "gamma"
        await pilot.press("right")
        assert choice.value == 1
        await pilot.press("left")
        assert choice.value == 3
        await pilot.pause()
        assert app.changes == [3, 1, 3]


async def test_enter_opens_the_list_and_picks_escape_keeps_the_value() -> None:
    app = ChoiceApp()
    async with app.run_test() as pilot:
        choice = app.query_one(Choice)
        choice.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("up", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, ChoiceDialog))
        assert choice.value == 1
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("down", "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ChoiceDialog))
        assert choice.value == 1 and app.focused is choice


async def test_options_can_be_replaced_and_unknown_values_are_refused() -> None:
    app = ChoiceApp()
    async with app.run_test():
        choice = app.query_one(Choice)
        choice.set_options([("beta", 2), ("delta", 4)])
        assert choice.value == 2  # still offered: kept
        choice.set_options([("delta", 4)])
        assert choice.value == 4
        try:
            choice.value = 99
        except ValueError as exc:
            assert "letter" in str(exc)
        else:
            raise AssertionError("a value that is not offered must be refused")


async def test_a_focused_choice_shows_its_keys_even_with_a_long_label() -> None:
    from textual.app import App

    from labconsole.ui.widgets.choice import Choice

    class Narrow(App[None]):
        CSS = "Choice { width: 12; }"

        def compose(self) -> ComposeResult:
            yield Choice([("erm+neurons+finetune", "a"), ("ERM", "b")], "a", id="c")

    app = Narrow()
    async with app.run_test(size=(80, 24)) as pilot:
        choice = app.query_one(Choice)
        choice.focus()
        await pilot.pause()
        rendered = str(choice.render())
        assert rendered.endswith("◂▸ ⏎") and len(rendered) <= 12
