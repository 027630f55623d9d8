"""The coalescing buffer between the engine thread and the UI thread."""

from __future__ import annotations

from labconsole.engine.events import EpochResult, LogRecord, Progress
from labconsole.errors import UserError
from labconsole.ui.bridge import EventBuffer, describe_error


def progress(step: int, run: str = "r", stage: str = "erm") -> Progress:
    return Progress(run_id=run, stage=stage, epoch=1, total_epochs=1, step=step, total_steps=100)


def test_only_the_latest_progress_of_a_run_and_stage_survives() -> None:
    buffer = EventBuffer()
    needs_flush = [buffer.push(progress(i)) for i in range(1, 101)]
    assert needs_flush[0] and not any(needs_flush[1:])  # one wake-up for the whole burst
    assert buffer.drain() == [progress(100)]
    assert buffer.coalesced == 99


def test_other_events_are_kept_in_order_and_never_replaced() -> None:
    buffer = EventBuffer()
    epoch = EpochResult(run_id="r", stage="erm", epoch=1, total_epochs=1, splits={})
    log = LogRecord(run_id="r", level="info", message="x")
    for event in (progress(1), epoch, progress(2), log, progress(3)):
        buffer.push(event)
    assert buffer.drain() == [epoch, log, progress(3)]


def test_progress_of_another_stage_or_run_is_not_replaced() -> None:
    buffer = EventBuffer()
    events = [progress(1, stage="erm"), progress(1, stage="finetune"), progress(1, run="other")]
    for event in events:
        buffer.push(event)
    assert buffer.drain() == events


def test_drain_empties_and_the_next_push_asks_for_a_flush_again() -> None:
    buffer = EventBuffer()
    buffer.push(progress(1))
    buffer.drain()
    assert buffer.drain() == []
    assert buffer.push(progress(2)) is True


def test_errors_for_people_keep_user_messages_and_name_other_exceptions() -> None:
    assert describe_error("Ranking", UserError("unknown group 'x'")) == "Ranking: unknown group 'x'"
    assert describe_error("Ranking", RuntimeError("boom")) == "Ranking failed: RuntimeError: boom"


async def test_an_interactive_call_that_is_stopped_sees_its_cancel_token_set() -> None:
    import threading

    from textual.app import App

    from labconsole.ui.bridge import Bridge
    from labconsole.ui.real_engine import CallCancelled

    token, stopped = CallCancelled(), threading.Event()
    assert not token.is_set()  # outside any worker

    def computing() -> str:
        while not token.is_set():  # what the session does between evaluation batches
            threading.Event().wait(0.01)
        stopped.set()
        return "stopped"

    app = App()
    async with app.run_test() as pilot:
        worker = Bridge(app).call("Readout", computing, on_result=lambda _: None, group="readout")
        await pilot.pause(0.1)
        assert not stopped.is_set()
        worker.cancel()
        assert stopped.wait(5)  # the computation itself stopped, not only the waiting
