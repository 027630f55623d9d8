"""Snapshots of every screen at 100×30 and 80×24, on the FakeEngine, fixed theme, no clock/ETA.

The walks to each screen live in ``labconsole.ui.screenshots`` (the docs use them too). Update
after an intended change with ``pytest tests/ui/test_snapshots.py --snapshot-update`` and look at
the SVGs before committing them.
"""

from __future__ import annotations

import pytest

from labconsole.ui.screenshots import SCREENS

SIZES = [(100, 30), (80, 24)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_snapshot(snap_compare, app_factory, screen: str, size: tuple[int, int]) -> None:
    assert snap_compare(app_factory(), terminal_size=size, run_before=SCREENS[screen])
