"""Setup: dataset check inline, checkpoints from runs/, opening a session."""

from __future__ import annotations

from textual.widgets import Input, Static

from labconsole.ui.fake_engine import FakeEngine
from labconsole.ui.widgets.choice import Choice

from .helpers import notifications, wait_for


async def test_embedded_dataset_needs_no_files_and_a_missing_one_is_named(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        check = app.screen.query_one("#data-check", Static)
        await wait_for(pilot, lambda: "embedded" in str(check.content))
        app.screen.query_one("#dataset", Choice).value = "waterbirds"
        app.screen.query_one("#data-root", Input).value = "/data/wb"
        await pilot.pause()
        await pilot.press("escape", "c")
        await wait_for(pilot, lambda: "metadata.csv" in str(check.content))
        assert "✗" in str(check.content)
        assert app.spec.dataset == "waterbirds" and app.spec.data_root == "/data/wb"


async def test_choosing_a_run_fills_the_checkpoint_and_shows_its_manifest(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        select = app.screen.query_one("#checkpoint-run", Choice)
        await wait_for(pilot, lambda: len(select.options) > 1)
        run = "runs/20250102-093000-finetune-s0"
        select.value = run
        manifest = app.screen.query_one("#manifest", Static)
        await wait_for(pilot, lambda: "preset finetune" in str(manifest.content))
        assert app.screen.query_one("#checkpoint-path", Input).value == run
        assert app.spec.checkpoint == run


async def test_opening_a_session_lists_layers_and_groups(app_factory) -> None:
    engine = FakeEngine()
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("o")
        await wait_for(pilot, lambda: app.session is not None)
        await pilot.pause()
        status = str(app.screen.query_one("#session-status", Static).content)
        assert "9 layers" in status and "landbird-water" in status
        assert engine.calls[0][0] == "open_session"


async def test_a_session_that_cannot_open_is_a_notification_not_a_crash(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        app.screen.query_one("#dataset", Choice).value = "celeba"
        await pilot.pause()
        await pilot.press("escape", "o")
        await wait_for(pilot, lambda: any("demo engine" in n.message for n in notifications(app)))
        assert app.session is None
        assert any("[error]" in line for line in app.log_lines)
        await pilot.press("2")  # still responsive
        assert app.current_mode == "neurons"


async def test_escape_leaves_a_text_field_and_function_keys_switch_from_inside_one(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        field = app.screen.query_one("#data-root", Input)
        field.focus()
        await pilot.press("1", "2")  # typed into the field, not screen switches
        assert field.value == "12" and app.current_mode == "setup"
        await pilot.press("f4")
        assert app.current_mode == "train"
        await pilot.press("f1")
        app.screen.query_one("#data-root", Input).focus()
        await pilot.press("escape", "2")
        assert app.current_mode == "neurons"
