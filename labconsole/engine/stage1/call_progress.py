"""Progress inside one long engine call (a ranking, a readout's walk over a split), as
``(done, total)`` counts for the console's n/N, at most about ten times a second."""

from __future__ import annotations

import time
from collections.abc import Callable

CallProgress = Callable[[int, int], None]


class RateLimited:
    """Passes ``(done, total)`` to ``progress`` at most ``rate`` times a second; the first step
    and the last (``done == total``) always get through, so a short call still shows its n/N
    and its end."""

    def __init__(self, progress: CallProgress, rate: float = 10.0, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError(f"progress rate = {rate}: expected a positive number of calls per second")
        self._progress = progress
        self._min_gap = 1.0 / rate
        self._clock = clock
        self._last: float | None = None

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        if done < total and self._last is not None and now - self._last < self._min_gap:
            return
        self._last = now
        self._progress(done, total)


def rate_limited(progress: CallProgress | None, rate: float = 10.0) -> CallProgress | None:
    """``progress`` behind a ``RateLimited`` (None stays None; an already limited one is kept)."""
    if progress is None or isinstance(progress, RateLimited):
        return progress
    return RateLimited(progress, rate)
