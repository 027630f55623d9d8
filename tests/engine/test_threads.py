"""Every core for a call the user waits on, all but one while a job runs."""

from __future__ import annotations

import threading

import torch

from labconsole.engine import threads


def _seen_in_thread(body) -> list[int]:
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(body()))
    worker.start()
    worker.join()
    return seen


def test_a_call_takes_every_core_unless_a_job_runs(monkeypatch) -> None:
    monkeypatch.setattr(threads, "cores", lambda: 2)
    before = torch.get_num_threads()
    try:

        def during_call() -> int:
            with threads.interactive_call():
                return torch.get_num_threads()

        assert _seen_in_thread(during_call) == [2]
        job_started, call_done = threading.Event(), threading.Event()

        def job() -> None:
            with threads.background_job():
                job_started.set()
                call_done.wait(10)

        runner = threading.Thread(target=job)
        runner.start()
        job_started.wait(10)
        assert _seen_in_thread(during_call) == [1]  # the job keeps a core free for the console
        call_done.set()
        runner.join()
        assert _seen_in_thread(during_call) == [2]  # the job is over: every core again
    finally:
        torch.set_num_threads(before)
