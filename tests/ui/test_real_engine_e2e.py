"""The console on the real engine, end to end, on the smoke profile: a checkpoint trained by the
engine, a session opened on it from Setup, a gradient ranking, the top neuron marked and zeroed,
and the per-group readout table checked against what the engine returned."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from labconsole.ui.app import create_app
from labconsole.ui.widgets.choice import Choice

pytestmark = pytest.mark.slow

# Only a hang ends a wait: the real engine's work (importing torch, opening the session, the
# ranking, the readout) runs on threads that a loaded machine can slow down many times over.
HANG_S = 600.0


async def wait_until(pilot: Any, condition: Callable[[], bool], state: str, hang_s: float = HANG_S) -> None:
    """Let the console run until ``condition()`` holds: no time budget for the work itself, a
    wall-clock deadline that only a stuck console reaches."""
    deadline = time.monotonic() + hang_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the console did not reach {state} within {hang_s:.0f} s: it looks stuck")
        await pilot.pause(0.05)


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
        await wait_until(pilot, lambda: len(runs.options) > 1, "the runs listed on Setup")
        best = str(smoke_run / "checkpoints" / "best.safetensors")
        offered = {value for _, value in runs.options}
        assert best in offered and str(smoke_run / "checkpoints" / "last.safetensors") in offered
        runs.value = best
        await wait_until(pilot, lambda: app.spec.checkpoint == best, "the checkpoint chosen")
        await pilot.press("o")
        await wait_until(pilot, lambda: app.session is not None, "an open session")
        session = app.session
        assert set(session.group_names) == set(session.train_group_counts)

        await pilot.press("2")  # gradient ranking over all groups, global top 10
        await wait_until(pilot, lambda: app.current_mode == "neurons" and bool(app.screen.query("#ranking")), "Neurons")
        neurons = app.screen
        ranking = neurons.query_one("#ranking", DataTable)
        await wait_until(pilot, lambda: ranking.row_count == 10, "the ranking listed")
        top = neurons.ranking[0]
        scores = [score for _, _, score in neurons.ranking]
        assert scores == sorted(scores, reverse=True)
        ranking.focus()
        await wait_until(pilot, lambda: app.focused is ranking, "the ranking focused")
        await pilot.press("m")
        await wait_until(pilot, lambda: bool(app.marked), "a neuron marked")
        assert app.marked == [top[:2]]

        weights_before = {k: v.clone() for k, v in session._session.model.state_dict().items()}
        await pilot.press("3")
        await wait_until(
            pilot, lambda: app.current_mode == "interventions" and bool(app.screen.query("#readout")), "Interventions"
        )
        interventions = app.screen
        app.set_focus(None)
        await pilot.press("a")
        await wait_until(pilot, lambda: len(interventions.history) == 1, "the readout done")
        entry = interventions.history[0]
        assert entry.neurons == (top[:2],) and entry.mode == "zero"

        table = interventions.query_one("#readout", DataTable)
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
        await wait_until(
            pilot, lambda: app.record is not None and len(app.record.entries("readout")) == 1, "the readout recorded"
        )
        line = app.record.entries("readout")[0]
        assert line["checkpoint"] == best
        assert line["readout"]["splits"]["test"]["delta_pp"] == entry.result.splits["test"].delta_pp

        weights_after = session._session.model.state_dict()
        assert all((weights_before[k] == weights_after[k]).all() for k in weights_before)  # restored
