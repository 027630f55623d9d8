"""Snapshots of every screen at 100×30 and 80×24, on the FakeEngine, fixed theme, no clock/ETA;
each walk also checks that nothing on the screen is cut.

The walks to each screen live in ``labconsole.ui.screenshots`` (the docs use them too). Update
after an intended change with ``pytest tests/ui/test_snapshots.py --snapshot-update`` and look at
the SVGs before committing them.
"""

from __future__ import annotations

import pytest

from labconsole.ui.screenshots import SCREENS

from .test_fits_80x24 import assert_nothing_is_cut

SIZES = [(100, 30), (80, 24)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_snapshot(snap_compare, app_factory, tmp_path, monkeypatch, screen: str, size: tuple[int, int]) -> None:
    monkeypatch.chdir(tmp_path)  # session records go to ./runs, named the same on every run

    async def walk_and_check(pilot) -> None:
        await SCREENS[screen](pilot)
        assert_nothing_is_cut(pilot.app, size)

    assert snap_compare(app_factory(runs_root="runs"), terminal_size=size, run_before=walk_and_check)
