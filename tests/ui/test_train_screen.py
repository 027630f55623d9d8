"""Train: a job streams into the screen; keys work meanwhile; cancel; errors never crash."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from textual.widgets import DataTable, Input, Static, TabbedContent

from labconsole.engine.events import EpochResult, Progress, RunStarted, StageStarted
from labconsole.ui.dialogs.confirm import ConfirmDialog
from labconsole.ui.fake_engine import FakeEngine
from labconsole.ui.screens.train import overrides_from_form
from labconsole.ui.widgets.choice import Choice

from .helpers import notifications, wait_for


async def train_with_preset(pilot, preset: str):
    """Open Train (4), wait for its preset list and choose ``preset``; the Train screen."""
    await pilot.press("4")
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.presets != [])
    screen.query_one("#preset", Choice).value = preset
    await pilot.pause()
    return screen


async def start_training(pilot, epochs: str = "") -> None:
    app = pilot.app
    await pilot.press("4")
    select = app.screen.query_one("#preset", Choice)
    await wait_for(pilot, lambda: select.value is not None)
    if epochs:
        app.screen.query_one("#epochs", Input).value = epochs
    app.screen.set_focus(None)
    app.simulate_key("g")  # not pilot.press: it would wait for the streaming job to go idle
    await wait_for(pilot, lambda: app.bridge.job_running or app.job.status != "idle")


def test_form_fields_become_overrides_and_bad_numbers_are_refused() -> None:
    assert overrides_from_form("3", "", "64", "1", "erm") == [
        "erm.epochs=3",
        "erm.batch_size=64",
        "seed=1",
        'stages=["erm"]',
    ]
    try:
        overrides_from_form("three", "", "", "", "erm")
    except ValueError as exc:
        assert "erm.epochs" in str(exc)
    else:
        raise AssertionError("a non-number must be refused")


async def test_a_training_job_streams_epochs_and_marks_the_selected_one(app_factory) -> None:
    engine = FakeEngine(epochs=4)
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await start_training(pilot, epochs="3")
        await wait_for(pilot, lambda: app.job.status == "done")
        await pilot.pause(0.3)  # one redraw tick
        table = app.screen.query_one("#epochs-table", DataTable)
        assert table.row_count == 9  # 3 epochs × (train, val, test)
        assert ("load_preset", "quickstart", ("erm.epochs=3", 'stages=["erm"]')) in engine.calls
        selected = [str(table.get_row_at(i)[-1]) for i in range(9)]
        assert selected.count("★") == 1 and selected[3 * (app.job.best_epoch - 1) + 1] == "★"  # on its val row


async def test_keys_are_handled_while_a_job_streams_and_cancel_saves(app_factory) -> None:
    gate = threading.Event()  # the job streams Progress until released or cancelled
    engine = FakeEngine(gate=gate, step_delay=0.01)
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await start_training(pilot)
        await wait_for(pilot, lambda: app.job.progress is not None)
        seen = app.job.progress_applied
        # simulate_key + wait_for rather than pilot.press: Pilot waits for the whole process to
        # go idle after each key, which a streaming job never lets happen.
        app.simulate_key("v")
        await wait_for(pilot, lambda: app.screen.query_one("#train-views", TabbedContent).active == "epochs-view")
        app.simulate_key("1")
        await wait_for(pilot, lambda: app.current_mode == "setup")
        app.simulate_key("4")
        await wait_for(pilot, lambda: app.current_mode == "train")
        assert app.job.active and not gate.is_set()  # the job was streaming all along
        await wait_for(pilot, lambda: app.job.progress_applied > seen)
        app.simulate_key("c")
        await wait_for(pilot, lambda: not app.bridge.job_running)
        assert app.job.status == "cancelled"
        assert any("checkpoint saved" in line for line in app.log_lines)


async def test_progress_bursts_are_coalesced(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        emit = app.bridge.emit  # the engine's emit; nothing is drained until we yield
        emit(RunStarted(run_id="r", preset="p", run_dir="d", stages=("erm",)))
        emit(StageStarted(run_id="r", stage="erm", total_epochs=2))
        for step in range(1, 501):
            emit(Progress(run_id="r", stage="erm", epoch=1, total_epochs=2, step=step, total_steps=500))
        emit(EpochResult(run_id="r", stage="erm", epoch=1, total_epochs=2, splits={}))
        for step in range(1, 201):
            emit(Progress(run_id="r", stage="erm", epoch=2, total_epochs=2, step=step, total_steps=500))
        await pilot.pause()
        assert app.job.progress_applied == 1
        assert app.job.progress.epoch == 2 and app.job.progress.step == 200
        assert len(app.job.epochs) == 1


async def test_a_fast_real_stream_is_coalesced_and_ends_on_the_last_state(app_factory) -> None:
    engine = FakeEngine(epochs=1, steps=3000)
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await start_training(pilot)
        await wait_for(pilot, lambda: app.job.status == "done", timeout=20)
        assert app.job.progress_applied < engine.progress_emitted
        assert app.job.progress.step == 3000


async def test_an_error_event_is_a_notification_and_the_app_lives_on(app_factory) -> None:
    app = app_factory(FakeEngine(fail_run="out of memory in layer4"))
    async with app.run_test(size=(100, 30)) as pilot:
        await start_training(pilot)
        await wait_for(pilot, lambda: not app.bridge.job_running)
        assert app.job.status == "failed"
        errors = [n for n in notifications(app) if n.severity == "error"]
        assert len(errors) == 1 and "out of memory" in errors[0].message
        await pilot.press("6")
        assert app.current_mode == "runs"


async def test_an_exception_in_the_engine_is_reported_in_one_place(app_factory) -> None:
    app = app_factory(FakeEngine(fail_with=RuntimeError("CUDA driver missing")))
    async with app.run_test(size=(100, 30)) as pilot:
        await start_training(pilot)
        await wait_for(pilot, lambda: not app.bridge.job_running)
        assert app.job.status == "failed"
        assert any("CUDA driver missing" in n.message for n in notifications(app))
        assert any("RuntimeError: CUDA driver missing" in line for line in app.log_lines)
        await start_training(pilot)  # a new job can start after a failure
        await wait_for(pilot, lambda: not app.bridge.job_running)


async def test_quitting_while_a_job_runs_asks_then_cancels_and_exits(app_factory) -> None:
    gate = threading.Event()
    app = app_factory(FakeEngine(gate=gate, step_delay=0.01))
    async with app.run_test(size=(100, 30)) as pilot:
        await start_training(pilot)
        await wait_for(pilot, lambda: app.job.progress is not None)
        app.simulate_key("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        app.simulate_key("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmDialog))
        assert app.bridge.job_running
        app.simulate_key("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        app.simulate_key("y")
        await wait_for(pilot, lambda: app._exit, timeout=5)
    assert app.job.status == "cancelled"
    assert app.return_code == 0


async def test_quitting_without_a_job_exits_at_once(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


def test_fine_tuning_alone_takes_its_fields_and_the_setup_checkpoint() -> None:
    assert overrides_from_form("2", "1e-4", "", "", "finetune", "runs/a") == [
        "finetune.epochs=2",
        "finetune.lr=0.0001",
        'stages=["finetune"]',
        'model.checkpoint="runs/a"',
    ]
    try:
        overrides_from_form("", "", "", "", "finetune", "")
    except ValueError as exc:
        assert "Setup" in str(exc)
    else:
        raise AssertionError("fine-tuning alone without a checkpoint must be refused")
    assert overrides_from_form("", "", "", "", "") == []  # the preset's own stages


async def test_erm_then_fine_tuning_draws_one_curve_per_stage(app_factory) -> None:
    engine = FakeEngine(epochs=3)
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await train_with_preset(pilot, "presets/finetune.toml")
        assert screen.query_one("#stages", Choice).value == "erm,finetune"
        screen.query_one("#profile", Choice).value = True
        app.set_focus(None)
        await pilot.press("g")
        await wait_for(pilot, lambda: app.job.status == "done")
        assert [c for c in engine.calls if c[0] == "load_preset"][-1] == (
            "load_preset",
            "finetune",
            ('stages=["erm", "finetune"]',),
            "smoke",
        )
        assert list(app.job.stage_epochs) == ["erm", "finetune"]
        assert all(e.stage == "finetune" for e in app.job.epochs)
        await pilot.pause(0.3)  # one redraw tick
        assert screen.shown_stage() == "finetune"
        table = screen.query_one("#epochs-table", DataTable)
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        labels = [str(r[0]) for r in rows]
        assert labels[0] == "E1" and "F1" in labels  # each epoch names its stage
        assert sum(str(r[-1]) == "★" for r in rows) == 2  # one selected epoch per stage
        await pilot.press("t")
        assert screen.shown_stage() == "erm"


async def test_fine_tuning_alone_needs_a_checkpoint_chosen_on_setup(app_factory) -> None:
    engine = FakeEngine(epochs=2)
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        # choosing a preset resets the stages to its own
        screen = await train_with_preset(pilot, "presets/finetune.toml")
        screen.query_one("#stages", Choice).value = "finetune"
        app.set_focus(None)
        await pilot.press("g")
        await pilot.pause()
        assert not app.bridge.job_running and "Setup" in str(screen.query_one("#form-error", Static).content)
        app.spec = app.spec.__class__(checkpoint="runs/20250101-120000-quickstart-s0")
        await pilot.press("g")
        await wait_for(pilot, lambda: app.job.status == "done")
        assert list(app.job.stage_epochs) == ["finetune"]
        loaded = [c for c in engine.calls if c[0] == "load_preset"][-1]
        assert 'model.checkpoint="runs/20250101-120000-quickstart-s0"' in loaded[2]


SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_epoch_shows_train_val_and_test_accuracy_per_group(app_factory, size) -> None:
    app = app_factory(FakeEngine(epochs=2))
    async with app.run_test(size=size) as pilot:
        await start_training(pilot)
        await wait_for(pilot, lambda: app.job.status == "done")
        await pilot.press("v")
        await pilot.pause(0.3)
        table = app.screen.query_one("#epochs-table", DataTable)
        heads = [str(c.label) for c in table.ordered_columns]
        assert heads == ["ep", "split", "LL", "LW", "WL", "WW", "WGA", "★"]
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[1] for r in rows] == ["train", "val", "test"] * 2
        last = app.job.epochs[-1]
        assert rows[3][2:6] == [f"{100 * accuracy:.1f}" for accuracy in last.splits["train"].groups.values()]
        legend = str(app.screen.query_one("#epochs-legend", Static).content)
        assert "WL waterbird-land" in legend
        assert table.virtual_size.width <= table.size.width  # nothing cut at 80×24


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_form_is_locked_while_a_job_runs_and_says_what_it_runs(app_factory, size) -> None:
    gate = threading.Event()
    app = app_factory(FakeEngine(gate=gate, step_delay=0.01))
    async with app.run_test(size=size) as pilot:
        screen = await train_with_preset(pilot, "presets/finetune.toml")
        info = screen.query_one("#preset-info", Static)
        assert "fine-tuning starts from this run's ERM model" in str(info.content)
        screen.query_one("#stages", Choice).value = "finetune"
        await pilot.pause()
        assert "needs a checkpoint" in str(info.content)  # the description follows the stages
        screen.query_one("#stages", Choice).value = "erm,finetune"
        await pilot.pause()
        app.set_focus(None)
        app.simulate_key("g")
        await wait_for(pilot, lambda: app.job.progress is not None)
        await pilot.pause(0.3)
        assert screen.query_one("#preset", Choice).disabled and screen.query_one("#epochs", Input).disabled
        assert "running: finetune" in str(info.content) and "erm → finetune" in str(info.content)
        app.simulate_key("c")
        await wait_for(pilot, lambda: not app.bridge.job_running)
        # The form unlocks at the screen's next redraw tick (later on a loaded machine).
        await wait_for(pilot, lambda: not screen.query_one("#preset", Choice).disabled)
        assert not screen.query_one("#epochs", Input).disabled


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_resumed_run_shows_its_whole_history_and_runs_says_it_is_running(app_factory, size) -> None:
    gate = threading.Event()
    engine = FakeEngine(epochs=4, gate=gate, step_delay=0.01)
    app = app_factory(engine)
    async with app.run_test(size=size) as pilot:
        await pilot.press("6")
        table = app.screen.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        table.focus()
        await pilot.press("down", "down")
        app.simulate_key("u")
        await wait_for(pilot, lambda: app.job.progress is not None)
        await pilot.pause(0.3)
        cancelled = "runs/20250101-180000-quickstart-s1"
        assert str(table.get_cell(cancelled, "status")) == "running"  # not "cancelled" while it goes
        assert [e.epoch for e in app.job.stage_epochs["erm"]] == [1, 2]  # recorded before the resume
        gate.set()
        await wait_for(pilot, lambda: app.job.status == "done")
        await pilot.pause(0.3)
        assert [e.epoch for e in app.job.stage_epochs["erm"]] == [1, 2, 3, 4]
        await pilot.press("4")
        await pilot.pause(0.3)
        epochs = app.screen.query_one("#epochs-table", DataTable)
        assert [str(epochs.get_row_at(i)[0]) for i in range(0, epochs.row_count, 3)] == ["1", "2", "3", "4"]
        assert app.job.best_epoch in {1, 2, 3, 4}  # the marker is on a plotted epoch


async def test_a_wrong_field_is_named_on_the_form_until_it_is_fixed(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        screen = app.screen
        await wait_for(pilot, lambda: screen.presets != [])
        screen.query_one("#epochs", Input).value = "two"
        app.set_focus(None)
        await pilot.press("g")
        error = screen.query_one("#form-error", Static)
        assert "erm.epochs" in str(error.content) and not app.bridge.job_running
        screen.query_one("#epochs", Input).value = "2"
        await pilot.pause()
        assert str(error.content) == ""


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_form_names_the_checkpoint_fine_tuning_starts_from_in_full(app_factory, size, monkeypatch) -> None:
    from labconsole.ui import fake_engine
    from labconsole.ui.engine_port import PresetEntry

    # the real quickstart's description: four lines of the form's column before the stages
    long = "ERM on synthetic-waterbirds: minority groups fit on train but not on test"
    presets = (PresetEntry("finetune", "presets/finetune.toml", long, ("erm", "finetune")),)
    monkeypatch.setattr(fake_engine, "PRESETS", presets)
    app = app_factory(FakeEngine())
    checkpoint = "/home/me/lab/runs/20261207-070853-quickstart-s0/checkpoints/best.safetensors"
    app.spec = dataclasses.replace(app.spec, checkpoint=checkpoint)
    async with app.run_test(size=size) as pilot:
        screen = await train_with_preset(pilot, "presets/finetune.toml")
        screen.query_one("#stages", Choice).value = "finetune"
        await pilot.pause(0.3)
        info = screen.query_one("#preset-info", Static)
        assert "fine-tuning starts from 20261207-070853-quickstart-s0/best" in str(info.content)
        # every line of the description is on the screen: the widget is as tall as its text
        needed = info.get_content_height(info.size, app.size, info.content_region.width)
        assert needed <= info.content_region.height
        assert info.region.bottom <= screen.query_one("#train-form").region.bottom
