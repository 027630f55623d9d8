"""Long interactive calls show the engine's own n/N while they run; a cancelled open says so."""

from __future__ import annotations

import threading
import time

from textual.widgets import Static

from labconsole.engine.context import Cancelled
from labconsole.ui.engine_port import SessionSpec
from labconsole.ui.fake_engine import FakeEngine
from labconsole.ui.fake_session import FakeSession
from labconsole.ui.widgets.busy_line import busy_text

from .helpers import open_session, wait_for


def status_text(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


def test_busy_text_names_the_unit_of_the_count() -> None:
    assert (
        busy_text("ranking by gradient", None, 2, 4, "groups")
        == "ranking by gradient… · 2/4 groups · Esc stops waiting"
    )
    assert (
        busy_text("reading out zero", 3.0, 5, 4, "chunks")
        == "reading out zero… · 4/4 chunks · 0:03 · Esc stops waiting"
    )


async def test_a_ranking_shows_its_count_while_it_computes(app_factory) -> None:
    engine = FakeEngine()
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_session(pilot)
        engine.call_gate = threading.Event()  # the ranking holds after its first group
        await pilot.press("2")
        await wait_for(pilot, lambda: "1/4 groups" in status_text(app, "#rank-status"))
        assert "ranking by gradient" in status_text(app, "#rank-status")
        engine.call_gate.set()
        await wait_for(pilot, lambda: "10 neurons by gradient" in status_text(app, "#rank-status"))
        assert "groups" not in status_text(app, "#rank-status")


async def test_a_readout_shows_chunks_done_while_it_computes(app_factory) -> None:
    engine = FakeEngine()
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_session(pilot)
        app.set_marked([("layer1.0.conv1", 3)])
        await pilot.press("3")
        await pilot.pause()
        engine.call_gate = threading.Event()  # the readout holds after its first chunk
        engine.exact_gate = threading.Event()  # then after its estimate
        await pilot.press("a")
        await wait_for(pilot, lambda: "1/4 chunks" in status_text(app, "#readout-status"))
        assert "reading out zero" in status_text(app, "#readout-status")
        engine.call_gate.set()
        # the subsamples of both splits are walked: the estimate is up, the count goes on
        await wait_for(
            pilot,
            lambda: (
                "2/4 chunks" in status_text(app, "#readout-status") and "≈ zero" in status_text(app, "#readout-status")
            ),
        )
        engine.exact_gate.set()
        await wait_for(pilot, lambda: "#1 zero on 1 neuron" in status_text(app, "#readout-status"))
        assert "chunks" not in status_text(app, "#readout-status")


async def test_counts_of_a_call_given_up_are_not_shown(app_factory) -> None:
    engine = FakeEngine()
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_session(pilot)
        engine.call_gate = threading.Event()
        await pilot.press("2")
        await wait_for(pilot, lambda: "1/4 groups" in status_text(app, "#rank-status"))
        await pilot.press("escape")  # stop waiting: the rest of its count must not come back
        await wait_for(pilot, lambda: "stopped waiting" in status_text(app, "#rank-status"))
        engine.call_gate.set()
        await pilot.pause(0.3)
        assert "groups" not in status_text(app, "#rank-status")


CHUNKS = 2000


class SlowOpenEngine(FakeEngine):
    """Opens like the real engine on a big dataset: chunk after chunk, checking its cancel token."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks = 0  # chunks of the open worked through

    def open_session(self, spec: SessionSpec) -> FakeSession:
        from labconsole.ui.real_engine import CallCancelled  # the token the real open gets

        token = CallCancelled()
        self.calls.append(("open_session", spec))
        for _ in range(CHUNKS):  # 40 s of chunks, unless cancelled
            if token.is_set():
                raise Cancelled("the session was not opened: cancelled")
            self.chunks += 1
            time.sleep(0.02)
        return FakeSession(self)


async def test_cancelling_an_open_stops_it_and_setup_says_cancelled(app_factory) -> None:
    engine = SlowOpenEngine()
    app = app_factory(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("o")
        await wait_for(pilot, lambda: "opening" in status_text(app, "#session-status"))
        await pilot.press("escape")
        assert "cancel" in status_text(app, "#session-status")  # "cancelling the open…" until it stops
        await wait_for(pilot, lambda: "cancelled: no session opened" in status_text(app, "#session-status"))
        assert engine.chunks < CHUNKS, "the open ran to its end: the cancel did not stop it"
        assert app.session is None
        assert not [line for line in app.log_lines if line.startswith("[error]")]
