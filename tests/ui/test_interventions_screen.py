"""Interventions: readout table per group (train and test), control, history, random k, reset."""

from __future__ import annotations

from textual.widgets import DataTable, Select, Static

from labconsole.ui.fake_engine import FakeEngine
from labconsole.ui.screens.interventions import minority_groups

from .helpers import notifications, open_session, wait_for


def test_minority_groups_are_the_small_training_groups() -> None:
    counts = {"landbird-land": 3498, "landbird-water": 184, "waterbird-land": 56, "waterbird-water": 1057}
    assert minority_groups(counts) == {"landbird-water", "waterbird-land"}


async def test_apply_reads_out_every_group_and_records_history(app_factory) -> None:
    engine = FakeEngine()
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_session(pilot)
        app.set_marked([("layer3.0.conv2", 4), ("layer2.0.conv1", 7)])
        await pilot.press("3")
        screen = app.screen
        screen.query_one("#mode", Select).value = "noise"
        await pilot.pause()
        await pilot.press("escape", "a")
        table = screen.query_one("#readout", DataTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        readout = [c for c in engine.calls if c[0] == "readout"][-1]
        assert readout[1] == (("layer3.0.conv2", 4), ("layer2.0.conv1", 7)) and readout[2] == "noise"
        rows = [table.get_row_at(i) for i in range(4)]
        roles = {str(r[0]): str(r[1]) for r in rows}
        assert roles["waterbird-land"] == "min" and roles["landbird-land"] == "maj"
        assert "±" in str(rows[1][3])  # noise mode shows the spread over seeds
        assert "control" in str(screen.query_one("#readout-note", Static).content)
        assert screen.query_one("#history", DataTable).row_count == 1


async def test_random_k_marks_k_neurons_reproducibly_and_reset_clears(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_session(pilot)
        await pilot.press("3", "r")
        await wait_for(pilot, lambda: len(app.marked) == 5)
        first = list(app.marked)
        assert len(set(first)) == 5
        assert ("random_neurons", 5, 0) in app.engine.calls  # the session draws them
        await pilot.press("a")
        await wait_for(pilot, lambda: len(app.screen.history) == 1)
        await pilot.press("x")
        assert app.marked == [] and app.screen.history == []
        assert app.screen.query_one("#history", DataTable).row_count == 0


async def test_apply_without_marks_or_session_warns(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3", "a")
        await pilot.pause()
        assert any("Open a session" in n.message for n in notifications(app))
