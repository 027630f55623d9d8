"""Setup: dataset check inline, checkpoints from runs/, opening a session."""

from __future__ import annotations

import pytest
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
        checkpoint = "runs/20250102-093000-finetune-s0/checkpoints/finetune-best.safetensors"
        select.value = checkpoint
        manifest = app.screen.query_one("#manifest", Static)
        await wait_for(pilot, lambda: "preset finetune" in str(manifest.content))
        assert app.screen.query_one("#checkpoint-path", Input).value == checkpoint
        assert app.spec.checkpoint == checkpoint


SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_picker_offers_every_checkpoint_of_a_run_by_name(app_factory, size) -> None:
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        select = app.screen.query_one("#checkpoint-run", Choice)
        await wait_for(pilot, lambda: len(select.options) > 1)
        labels = [label for label, _ in select.options]
        assert "20250102-093000-finetune-s0 · finetune-best (done)" in labels
        assert "20250102-093000-finetune-s0 · epoch_002 (done)" in labels
        # a fine-tune-only run has no best.safetensors: its own checkpoints are offered instead
        only = [label for label in labels if "finetune-only" in label]
        assert only == [
            "20250102-110000-finetune-only-s0 · finetune-best (done)",
            "20250102-110000-finetune-only-s0 · finetune-last (done)",
        ]
        select.value = "runs/20250102-110000-finetune-only-s0/checkpoints/finetune-best.safetensors"
        await pilot.pause()
        await pilot.press("o")
        await wait_for(pilot, lambda: app.session is not None)
        status = app.screen.query_one("#session-status", Static)
        # the status names the model it opened (the previous session's line would name another)
        await wait_for(
            pilot, lambda: "session ready on 20250102-110000-finetune-only-s0/finetune-best" in str(status.content)
        )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_failure_to_open_is_shown_on_setup_with_its_reason(app_factory, size) -> None:
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.screen.query_one("#checkpoint-path", Input).value = "runs/20250102-110000-finetune-only-s0"
        await pilot.pause()
        await pilot.press("escape", "o")
        status = app.screen.query_one("#session-status", Static)
        await wait_for(pilot, lambda: "✗" in str(status.content))
        text = str(status.content)
        assert "opening" not in text and "best.safetensors" in text
        assert status.has_class("error-text") and app.session is None


async def test_opening_a_session_lists_layers_and_groups(app_factory) -> None:
    engine = FakeEngine()
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("o")
        await wait_for(pilot, lambda: app.session is not None)
        await pilot.pause()
        status = str(app.screen.query_one("#session-status", Static).content)
        assert "9 layers" in status and "landbird-water" in status
        assert "session ready on fresh weights" in status
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


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_opening_shows_what_it_loads_and_escape_stops_waiting(app_factory, size) -> None:
    import threading

    engine = FakeEngine()
    engine.call_gate = threading.Event()  # opening blocks until released
    app = app_factory(engine)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.set_focus(None)
        await pilot.press("o")
        status = app.screen.query_one("#session-status", Static)
        await wait_for(pilot, lambda: "step 1/2" in str(status.content))
        assert "loading the model and data" in str(status.content) and "Esc stops waiting" in str(status.content)
        await pilot.press("escape")
        assert "cancelling the open" in str(status.content)
        engine.call_gate.set()  # this open ignores its token: it finishes, and is dropped
        await wait_for(pilot, lambda: "cancelled: the open had finished already" in str(status.content))
        assert app.session is None  # the answer that came late was dropped
        await pilot.press("o")
        await wait_for(pilot, lambda: app.session is not None)
