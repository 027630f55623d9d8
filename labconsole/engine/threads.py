"""Torch threads in the console: every core for a call the user is waiting on, all but one while a
job trains in the background.

A background job (ERM, fine-tuning) runs for minutes while the user keeps working, so it leaves
a core to the console's event loop. An interactive call (a ranking, a readout) is what the user
waits for; leaving a core idle then doubles the wait on a 2-core laptop for no gain, since
the console only redraws a progress line. A call takes every core only while no job is
running. Torch's thread count is kept per thread (a new thread starts with the last count set
anywhere), and each job and each call runs on a worker thread of its own, so the setting made
at the start of a job or a call holds for all of it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_lock = threading.Lock()
_jobs = 0


def cores() -> int:
    return os.cpu_count() or 1


def all_but_one() -> int:
    return max(1, cores() - 1)


@contextmanager
def background_job() -> Iterator[None]:
    """Inside the block a job runs: torch keeps to all cores but one."""
    global _jobs
    with _lock:
        _jobs += 1
        torch.set_num_threads(all_but_one())
    try:
        yield
    finally:
        with _lock:
            _jobs -= 1


@contextmanager
def interactive_call() -> Iterator[None]:
    """Inside the block the user waits on a call: every core, unless a job is running."""
    with _lock:
        if _jobs == 0:
            torch.set_num_threads(cores())
    try:
        yield
    finally:
        with _lock:
            torch.set_num_threads(all_but_one())
