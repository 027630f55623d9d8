"""Neurons: re-ranking in a worker on every control change, marking, layer filter."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import DataTable, Input, Select, Static, Tree

from labconsole.ui.fake_engine import FakeEngine

from .helpers import open_session, wait_for


async def test_ranking_shows_k_rows_and_reranks_when_a_control_changes(app_factory) -> None:
    engine = FakeEngine()
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_session(pilot)
        await pilot.press("2")
        table = app.screen.query_one("#ranking", DataTable)
        await wait_for(pilot, lambda: table.row_count == 10)
        app.screen.query_one("#criterion", Select).value = "magnitude"
        await wait_for(pilot, lambda: any(c[:2] == ("rank", "magnitude") for c in engine.calls))
        app.screen.query_one("#k", Input).value = "3"
        await wait_for(pilot, lambda: table.row_count == 3)
        ranks = [c for c in engine.calls if c[0] == "rank"]
        assert ranks[-1] == ("rank", "magnitude", None, "global", 3, "paper")  # magnitude ignores the group


async def test_invalid_k_is_explained_and_does_not_rank(app_factory) -> None:
    engine = FakeEngine()
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_session(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: any(c[0] == "rank" for c in engine.calls))
        before = len(engine.calls)
        app.screen.query_one("#k", Input).value = "ten"
        await pilot.pause()
        assert "positive number" in str(app.screen.query_one("#rank-status", Static).content)
        assert len(engine.calls) == before


async def test_keys_are_handled_while_a_ranking_is_still_computing(app_factory) -> None:
    engine = FakeEngine()
    engine.call_gate = threading.Event()  # every rank blocks until released
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        engine.call_gate.set()
        await open_session(pilot)
        engine.call_gate.clear()
        await pilot.press("2")
        await wait_for(pilot, lambda: any(c[0] == "rank" for c in engine.calls))
        assert "ranking by" in str(app.screen.query_one("#rank-status", Static).content)
        await pilot.press("3")
        assert app.current_mode == "interventions"
        await pilot.press("2")
        assert app.current_mode == "neurons"
        engine.call_gate.set()
        await wait_for(pilot, lambda: app.screen.query_one("#ranking", DataTable).row_count == 10)


async def test_marking_rows_and_filtering_by_layer(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_session(pilot)
        await pilot.press("2")
        screen = app.screen
        table = screen.query_one("#ranking", DataTable)
        await wait_for(pilot, lambda: table.row_count == 10)
        table.focus()
        await pilot.press("m", "down", "m")
        first, second = screen.ranking[0], screen.ranking[1]
        assert app.marked == [first[:2], second[:2]]
        await pilot.press("m")  # unmark the highlighted one
        assert app.marked == [first[:2]]
        await pilot.press("a")
        assert len(app.marked) == 10
        await pilot.press("u")
        assert app.marked == []
        layer = first[0]
        tree = screen.query_one("#layers", Tree)
        node = next(n for n in tree._tree_nodes.values() if n.data == layer)
        tree.select_node(node)
        await pilot.pause()
        assert table.row_count == sum(1 for r in screen.ranking if r[0] == layer)


SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_layer_filter_says_how_many_it_shows_and_why_none(app_factory, size) -> None:
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        await open_session(pilot)
        await pilot.press("2")
        screen = app.screen
        table = screen.query_one("#ranking", DataTable)
        status = screen.query_one("#rank-status", Static)
        await wait_for(pilot, lambda: table.row_count == 10)
        screen.query_one("#scope", Select).value = "per-layer"
        screen.query_one("#k", Input).value = "7"
        await wait_for(pilot, lambda: len(screen.ranking) == 63)  # 7 in each of 9 layers
        screen.layer_filter = "layer2.0.conv1"
        screen._fill_table()
        assert table.row_count == 7
        assert "7 of 63" in str(status.content) and "layer2.0.conv1" in str(status.content)
        screen.query_one("#scope", Select).value = "global"
        screen.query_one("#k", Input).value = "1"
        await wait_for(pilot, lambda: len(screen.ranking) == 1)
        screen.layer_filter = "conv1"  # the single top neuron is in a deeper layer
        screen._fill_table()
        assert table.row_count == 0
        assert "none of the 1 ranked neurons is in conv1" in str(status.content)


async def test_an_empty_k_is_named(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_session(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.query_one("#ranking", DataTable).row_count == 10)
        app.screen.query_one("#k", Input).value = ""
        await pilot.pause()
        status = app.screen.query_one("#rank-status", Static)
        assert "k is empty" in str(status.content) and status.has_class("error-text")


async def test_rankings_are_recorded_in_the_session_record(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_session(pilot)
        await wait_for(pilot, lambda: app.record is not None)
        await pilot.press("2")
        await wait_for(pilot, lambda: app.record is not None and app.record.entries("ranking"))
        line = app.record.entries("ranking")[0]
        assert line["criterion"] == "gradient" and len(line["neurons"]) == 10
        assert any(entry.startswith("[info] ranking: 10 neurons") for entry in app.log_lines)


async def test_a_ranking_done_before_the_record_is_open_is_still_recorded(app_factory, monkeypatch) -> None:
    import time

    from labconsole.engine.stage1.session_record import SessionRecord

    opened = SessionRecord.open_or_create.__func__

    def slow(cls, *args, **kwargs):
        time.sleep(3.0)  # the record opens after the first ranking is shown
        return opened(cls, *args, **kwargs)

    monkeypatch.setattr(SessionRecord, "open_or_create", classmethod(slow))
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_session(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.query_one("#ranking", DataTable).row_count == 10)
        assert app.record is None
        await wait_for(pilot, lambda: app.record is not None)
        assert [line["type"] for line in app.record.entries()] == ["ranking"]


async def test_the_ranking_columns_fit_their_cells_as_soon_as_the_list_is_made_again(app_factory) -> None:
    """A ranking by another score makes the list again (its score column says which score); its
    columns must fit the new cells at once, not on the table's next idle, or a redraw before it
    cuts them."""
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_session(pilot)
        await pilot.press("2")
        screen = app.screen
        table = screen.query_one("#ranking", DataTable)
        await wait_for(pilot, lambda: table.row_count == 10)
        screen.ranking_score = "specific"  # the score column's header changes
        screen._fill_table()
        columns = list(table.columns.values())
        assert str(columns[-1].label) == "specific"
        for i, column in enumerate(columns):
            widest = max(len(str(table.get_row_at(r)[i])) for r in range(table.row_count))
            assert column.get_render_width(table) - 2 * table.cell_padding >= max(widest, len(str(column.label)))
