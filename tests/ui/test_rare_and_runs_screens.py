"""Rare lab (pattern preview, experiment as a job, theory curve) and Runs (open, compare, export)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Select, Static

from labconsole.ui.dialogs.text_view import LogDialog, TextDialog
from labconsole.ui.fake_engine import FakeEngine, patched_digit
from labconsole.ui.widgets.half_block import HalfBlockImage

from .helpers import notifications, wait_for


def test_patterns_are_drawn_where_the_spec_puts_them() -> None:
    s3 = patched_digit("S3", 28)
    assert all(s3[r][c] == 1.0 for r in range(5) for c in range(5))
    inv = patched_digit("Inv", 28)
    assert all(inv[r][c] == 1.0 for r in range(3, 25) for c in range(13, 16))


async def test_pattern_preview_follows_the_picker(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("5")
        preview = app.screen.query_one("#preview", HalfBlockImage)
        await wait_for(pilot, lambda: preview.pixels == patched_digit("S3", 28))
        app.set_focus(None)
        await pilot.press("p")  # next pattern: R1
        assert app.screen.query_one("#pattern", Select).value == "R1"
        await wait_for(pilot, lambda: preview.pixels == patched_digit("R1", 28))


async def test_the_rare_experiment_runs_as_a_job_and_fills_the_table(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("5")
        app.screen.query_one("#counts", Input).value = "0, 1, 5"
        app.set_focus(None)
        await pilot.press("g")
        table = app.screen.query_one("#rare-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        assert [str(table.get_row_at(i)[0]) for i in range(3)] == ["0", "1", "5"]
        assert app.job.kind == "rare" and app.job.status == "done"


async def test_bad_rare_inputs_are_refused_with_a_hint(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("5")
        app.screen.query_one("#counts", Input).value = "a, b"
        app.set_focus(None)
        await pilot.press("g")
        await pilot.pause()
        assert not app.bridge.job_running
        assert "n examples" in str(app.screen.query_one("#rare-status", Static).content)  # named on the screen


async def test_runs_are_listed_opened_compared_and_exported(app_factory) -> None:
    engine = FakeEngine()
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("6")
        table = app.screen.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        # the final model's test WGA, with the stage that made it
        assert [str(table.get_row_at(i)[-1]) for i in range(4)] == ["71.0 FT", "74.1 FT", "–", "62.2 ERM"]
        table.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog))
        await pilot.press("escape")
        await pilot.press("c")  # nothing picked yet
        assert any("Pick two runs" in n.message for n in notifications(app))
        await pilot.press("space", "down", "down", "space", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog))
        assert app.screen.title_text == "Compare runs"
        await pilot.press("escape", "e")
        await wait_for(pilot, lambda: any(c[0] == "export_report" for c in engine.calls))
        assert engine.calls[-1] == ("export_report", "runs/20250101-180000-quickstart-s1")


async def test_the_log_dialog_shows_what_happened(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        app.write_log("[info] hello from the test")
        app.set_focus(None)
        await pilot.press("l")
        assert isinstance(app.screen, LogDialog)
        await pilot.press("escape")
        assert not isinstance(app.screen, LogDialog)


async def test_an_interrupted_run_is_resumed_as_a_job_and_a_finished_one_is_not(app_factory) -> None:
    engine = FakeEngine()
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("6")
        table = app.screen.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        table.focus()
        await pilot.press("u")  # the first run is done
        assert any("only a cancelled" in n.message for n in notifications(app))
        assert not any(c[0] == "resume_job" for c in engine.calls)
        await pilot.press("down", "down", "u")  # the cancelled one
        await wait_for(pilot, lambda: app.job.status == "done")
        assert ("resume_job", "runs/20250101-180000-quickstart-s1") in engine.calls
        assert app.job.label.startswith("resume ")


SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_rare_chart_shows_the_measured_points_with_error_bars(app_factory, size) -> None:
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        await pilot.press("5", "g")
        await wait_for(pilot, lambda: app.screen.query_one("#rare-table", DataTable).row_count == 7)
        await pilot.pause(0.2)
        assert app.screen.chart == "measured"
        rows = sorted(app.screen.rows, key=lambda row: row.n)
        assert app.screen.plotted == {
            "n": [row.n for row in rows],
            "score_pct": [100 * row.spurious_score for row in rows],
            "se_pct": [100 * row.spurious_score_se for row in rows],  # the error bars
        }
        await pilot.press("v")
        assert app.screen.chart == "theory"


async def test_a_rare_run_shows_its_summary_in_runs(app_factory) -> None:
    from labconsole.engine.records import RunSummary
    from labconsole.ui.screens.runs import summary_lines

    summary = RunSummary.model_validate(
        {
            "rare-score": {
                "per_pattern": {"S3": {"0": {"score": {"mean": 0.01, "se": 0.002}}, "5": {"score": {"mean": 0.4}}}}
            }
        }
    )
    lines = [str(line) for line in summary_lines(summary)]
    assert lines == ["rare-score S3: spurious score n=0 0.010±0.002, n=5 0.400"]
    assert "no summary.json" in str(summary_lines(RunSummary())[0])


async def test_a_wrong_rare_field_is_named_until_it_is_fixed(app_factory) -> None:
    from textual.widgets import Input, Static

    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        app.screen.query_one("#rare-seeds", Input).value = "0"
        app.set_focus(None)
        await pilot.press("g")
        status = app.screen.query_one("#rare-status", Static)
        assert "seeds: a whole number ≥ 1" in str(status.content) and status.has_class("error-text")
        assert not app.bridge.job_running
        app.screen.query_one("#rare-seeds", Input).value = "2"
        await pilot.pause()
        assert "seeds" not in str(status.content) and not status.has_class("error-text")
