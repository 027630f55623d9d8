"""Interventions: readout table per group (train and test), control, history, random k, reset."""

from __future__ import annotations

import pytest
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Input, Select, Static

from labconsole.engine.records import Readout
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
        await wait_for(pilot, lambda: table.row_count == 8)  # 4 groups × (train, test)
        readout = [c for c in engine.calls if c[0] == "readout"][-1]
        assert readout[1] == (("layer3.0.conv2", 4), ("layer2.0.conv1", 7)) and readout[2] == "noise"
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(8)]
        assert [r[0] for r in rows] == ["train", "", "", "", "test", "", "", ""]
        roles = {r[1]: r[2] for r in rows[:4]}
        assert roles["waterbird-land"] == "min" and roles["landbird-land"] == "maj"
        assert "±" in rows[1][4]  # noise mode shows the spread over seeds
        assert "random" in str(screen.query_one("#readout-note", Static).content)
        assert screen.query_one("#history", DataTable).row_count == 1


SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_random_control_is_shown_per_group_as_mean_and_sd(app_factory, size) -> None:
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        await open_session(pilot)
        app.set_marked([("layer3.0.conv2", 4), ("layer2.0.conv1", 7)])
        await pilot.press("3")
        screen = app.screen
        screen.query_one("#mode", Select).value = "noise"
        await pilot.pause()
        await pilot.press("escape", "a")
        table = screen.query_one("#readout", DataTable)
        await wait_for(pilot, lambda: table.row_count == 8)
        control = screen.history[-1].result.control
        assert control is not None
        for i in range(8):
            row = [str(cell) for cell in table.get_row_at(i)]
            split = "train" if i < 4 else "test"
            group = row[1]
            mean = control[split].delta_pp[group]
            sd = control[split].spread_pp[group]
            assert mean is not None and sd is not None
            assert row[5] == f"{mean:+.2f}±{sd:.2f}"  # beside the intervention's own change
        # every column of the table is on screen, nothing cut
        assert table.virtual_size.width <= table.size.width


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_readouts_are_recorded_on_disk_and_come_back_with_the_session(app_factory, tmp_path, size) -> None:
    from labconsole.engine.stage1.session_record import SessionRecord

    runs = tmp_path / "runs"
    app = app_factory(runs_root=str(runs))
    async with app.run_test(size=size) as pilot:
        await open_session(pilot)
        await wait_for(pilot, lambda: app.record is not None)
        app.set_marked([("layer3.0.conv2", 4)])
        await pilot.press("3", "a")
        await wait_for(pilot, lambda: len(app.screen.history) == 1)
        record_dir = app.record.path
    assert record_dir.parent == runs
    lines = SessionRecord(record_dir).entries("readout")
    assert len(lines) == 1 and lines[0]["readout"]["neurons"] == [["layer3.0.conv2", 4]]
    assert SessionRecord(record_dir).model.dataset == "synthetic-waterbirds"
    assert any("readout" in line for line in app.log_lines)

    again = app_factory(runs_root=str(runs))  # quit and start the console again
    async with again.run_test(size=size) as pilot:
        await open_session(pilot)
        await pilot.press("3")
        await wait_for(pilot, lambda: len(again.screen.history) == 1)
        assert again.record.path == record_dir
        assert again.screen.query_one("#history", DataTable).row_count == 1
        assert again.screen.query_one("#readout", DataTable).row_count == 8


async def test_a_wrong_value_is_named_until_it_is_fixed(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_session(pilot)
        app.set_marked([("layer3.0.conv2", 4)])
        await pilot.press("3")
        seeds = app.screen.query_one("#seeds", Input)
        status = app.screen.query_one("#readout-status", Static)
        seeds.value = "x"
        await pilot.pause()
        await pilot.press("escape", "a")
        await pilot.pause()
        assert "seeds must be" in str(status.content) and seeds.has_class("-invalid")
        assert not [c for c in app.engine.calls if c[0] == "readout"]
        seeds.value = "3"
        await pilot.pause()
        assert "seeds must be" not in str(status.content) and not seeds.has_class("-invalid")
        # the field is wide enough to show its value
        assert seeds.content_size.width >= 4


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


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_tracing_heat_map_has_a_cell_per_layer_and_group_and_counts_its_steps(app_factory, size) -> None:
    import threading

    from labconsole.ui.dialogs.heat_map import HeatMapDialog

    engine = FakeEngine()
    app = app_factory(engine)
    async with app.run_test(size=size) as pilot:
        await open_session(pilot)
        await pilot.press("3")
        engine.call_gate = threading.Event()  # hold each rank/readout until released
        app.simulate_key("m")
        status = app.screen.query_one("#readout-status", Static)
        await wait_for(pilot, lambda: "heat map" in str(status.content) and "/40" in str(status.content), timeout=30)
        assert "Esc stops waiting" in str(status.content)  # 4 groups × (1 ranking + 9 layers)
        engine.call_gate.set()
        await wait_for(pilot, lambda: isinstance(app.screen, HeatMapDialog), timeout=20)
        heat = app.screen.heat
        assert heat["layers"] == [layer.name for layer in app.layers] and len(heat["groups"]) == 4
        session = app.session
        top = session.rank("gradient", "waterbird-land", "per-layer", 3)
        neurons = [(layer, i) for layer, i, _ in top if layer == "layer2.0.conv1"]
        expected = session.readout(neurons, "zero", 0.0, 1, ("test",), False).splits["test"].delta_pp
        assert heat["delta_pp"]["layer2.0.conv1"]["waterbird-land"] == expected["waterbird-land"]
        await wait_for(pilot, lambda: bool(app.screen.query("#heat-map-table")), timeout=10)  # composed
        table = app.screen.query_one("#heat-map-table", Static)
        assert table.size.width <= size[0]
        # every layer's row is on the screen without scrolling, the legend under them
        await wait_for(pilot, lambda: table.size.height == 1 + len(heat["layers"]), timeout=10)
        scroll = app.screen.query_one("#heat-map VerticalScroll", VerticalScroll)
        assert scroll.max_scroll_y == 0 and scroll.size.height >= table.size.height
        dialog = app.screen.query_one("#heat-map").region
        legend = app.screen.query_one("#heat-map .dialog-hint").region
        assert dialog.contains_region(scroll.region) and dialog.contains_region(legend)
        assert legend.y >= scroll.region.bottom


def worst_case_estimate(groups) -> Readout:
    """An estimate as wide as the engine's get: 100 % baselines, two-digit changes with wide
    intervals, a control whose spread over few draws on a subsample is large."""
    split = {
        "baseline": dict.fromkeys(groups, 1.0),
        "after": dict.fromkeys(groups, 0.995),
        "delta_pp": dict.fromkeys(groups, -12.5),
        "spread_pp": dict.fromkeys(groups, 0.0),
        "ci_pp": {group: [-25.04, -10.12] for group in groups},
    }
    control = {**split, "delta_pp": dict.fromkeys(groups, -12.5), "spread_pp": dict.fromkeys(groups, 25.0)}
    return Readout.model_validate(
        {"splits": {"train": split, "test": split}, "control": {"train": control, "test": control}, "estimate": True}
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_progressive_estimate_fits_the_table_with_every_number_whole(app_factory, size) -> None:
    import threading

    engine = FakeEngine()
    engine.exact_gate = threading.Event()  # the readout holds after sending its estimate
    app = app_factory(engine)
    async with app.run_test(size=size) as pilot:
        await open_session(pilot)
        app.set_marked([("layer3.0.conv2", 4), ("layer2.0.conv1", 7), ("layer1.0.conv1", 2)])
        await pilot.press("3")
        screen = app.screen
        await pilot.press("escape", "a")
        table = screen.query_one("#readout", DataTable)
        await wait_for(pilot, lambda: table.row_count == 8 and "≈" in str(table.get_row_at(1)[4]))
        await pilot.pause(0.1)
        assert table.virtual_size.width <= table.size.width <= size[0]
        # the widest estimate the engine sends: still whole, every number on screen
        screen._show_estimate(tuple(app.marked), "zero", worst_case_estimate(app.session.group_names))
        await pilot.pause(0.2)
        assert table.virtual_size.width <= table.size.width, [
            (c.content_width, str(table.get_row_at(0)[i])) for i, c in enumerate(table.columns.values())
        ]
        wrapped = ["\n" in str(table.get_row_at(i)[4]) for i in range(table.row_count)]
        assert all(wrapped) if size[0] < 100 else not any(wrapped)  # the interval on a 2nd line only if needed
        for i in range(table.row_count):
            cells = " ".join(str(cell) for cell in table.get_row_at(i))
            for number in ("100.0", "≈99.5", "≈-12.50", "-25.0", "-10.1", "-12.50±25.00"):
                assert number in cells, (number, cells)
        engine.exact_gate.set()
        await wait_for(pilot, lambda: screen.history and "≈" not in str(table.get_row_at(1)[4]))
        assert table.virtual_size.width <= table.size.width
