"""The console on the real engine, end to end, on the smoke profile: a checkpoint trained by the
engine, a session opened on it from Setup, a gradient ranking, the top neuron marked and zeroed,
and the per-group readout table checked against what the engine returned."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from labconsole.ui.app import create_app
from labconsole.ui.widgets.choice import Choice

from .helpers import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from labconsole.engine.api import run_job
    from labconsole.presets import load_preset

    root = tmp_path_factory.mktemp("runs")
    preset = load_preset("presets/quickstart.toml", ['stages=["erm"]'], smoke=True)
    run = run_job(preset, emit=lambda event: None, runs_root=root)
    assert run.status() == "done"
    return run.path


async def test_rank_mark_zero_and_read_out_on_a_real_checkpoint(smoke_run: Path) -> None:
    app = create_app(deterministic=True, runs_root=str(smoke_run.parent))
    async with app.run_test(size=(100, 30)) as pilot:
        runs = app.screen.query_one("#checkpoint-run", Choice)
        await wait_for(pilot, lambda: len(runs.options) > 1, timeout=30)
        best = str(smoke_run / "checkpoints" / "best.safetensors")
        offered = {value for _, value in runs.options}
        assert best in offered and str(smoke_run / "checkpoints" / "last.safetensors") in offered
        runs.value = best
        await pilot.pause()
        assert app.spec.checkpoint == best
        await pilot.press("o")
        await wait_for(pilot, lambda: app.session is not None, timeout=60)
        session = app.session
        assert set(session.group_names) == set(session.train_group_counts)

        await pilot.press("2")  # gradient ranking over all groups, global top 10
        ranking = app.screen.query_one("#ranking", DataTable)
        await wait_for(pilot, lambda: ranking.row_count == 10, timeout=60)
        top = app.screen.ranking[0]
        scores = [score for _, _, score in app.screen.ranking]
        assert scores == sorted(scores, reverse=True)
        ranking.focus()
        await pilot.press("m")
        assert app.marked == [top[:2]]

        weights_before = {k: v.clone() for k, v in session._session.model.state_dict().items()}
        await pilot.press("3")
        app.set_focus(None)
        await pilot.press("a")
        await wait_for(pilot, lambda: len(app.screen.history) == 1, timeout=60)
        entry = app.screen.history[0]
        assert entry.neurons == (top[:2],) and entry.mode == "zero"

        table = app.screen.query_one("#readout", DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        groups = list(session.group_names)
        assert [row[1] for row in rows] == groups * 2  # train rows, then test rows
        for i, row in enumerate(rows):
            split, group = ("train", "test")[i // len(groups)], row[1]
            result = entry.result.splits[split]
            before, after = (float(x) for x in row[3].split("→"))
            delta = row[4].split("±")[0]
            assert before == pytest.approx(100 * (result.baseline[group] or 0.0), abs=0.051)
            assert after == pytest.approx(100 * (result.after[group] or 0.0), abs=0.051)
            assert float(delta) == pytest.approx(result.delta_pp[group], abs=0.005)
            assert float(delta) == pytest.approx(after - before, abs=0.11)
            assert entry.result.control is not None
            control = entry.result.control[split]
            mean, sd = (float(x) for x in row[5].split("±"))  # the random control, per group
            assert mean == pytest.approx(control.delta_pp[group], abs=0.005)
            assert sd == pytest.approx(control.spread_pp[group] or 0.0, abs=0.005)
        smallest = min(session.train_group_counts, key=session.train_group_counts.__getitem__)
        assert next(row for row in rows if row[1] == smallest)[2] == "min"
        assert entry.result.control is not None  # the random-neuron control ran too
        # the readout is in the session record on disk, with the model it used
        await wait_for(pilot, lambda: app.record is not None and len(app.record.entries("readout")) == 1)
        line = app.record.entries("readout")[0]
        assert line["checkpoint"] == best
        assert line["readout"]["splits"]["test"]["delta_pp"] == entry.result.splits["test"].delta_pp

        weights_after = session._session.model.state_dict()
        assert all((weights_before[k] == weights_after[k]).all() for k in weights_before)  # restored
