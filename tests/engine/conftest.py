"""Engine tests run tiny models: one torch thread is faster than two on a busy 2-core box
(thread hand-offs cost more than they save), and it keeps timings out of each other's way."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
