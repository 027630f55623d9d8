"""Every screen is complete at 80×24 and at a larger size: no table wider than its pane, no
footer key off the screen, the job status and long log lines whole. (The per-screen check runs
inside the snapshot test, on the same walks.)"""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, Footer, Static

from labconsole.ui.screenshots import SCREENS
from labconsole.ui.widgets.log_pane import LogPane

from .helpers import wait_for

SIZES = [(80, 24), (120, 40)]


def assert_nothing_is_cut(app: Any, size: tuple[int, int]) -> None:
    """Run by the snapshot test after each walk (80×24 and 100×30)."""
    for table in app.screen.query(DataTable):
        if table.display and table.size.width:
            assert table.virtual_size.width <= table.size.width, f"{table.id} is cut"
    if app.screen.is_modal:  # a dialog: no footer, no mode bar
        return
    footer = app.screen.query_one(Footer)
    keys = list(footer.query("FooterKey"))
    assert keys and all(key.region.right <= size[0] for key in keys), "a footer key is off the screen"
    status = app.screen.query_one("#job-status", Static)
    assert len(str(status.content)) <= max(status.content_size.width, 0) or not str(status.content)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_long_log_lines_wrap_in_the_train_log(app_factory, size: tuple[int, int]) -> None:
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        app.write_log("[info] " + " ".join(f"word{i}" for i in range(60)))  # before the pane exists
        await pilot.press("4")
        await wait_for(pilot, lambda: app.screen.presets != [])
        app.set_focus(None)
        await pilot.press("v", "v")
        await pilot.pause(0.3)
        pane = app.screen.query_one(LogPane)
        assert pane.size.width and pane.virtual_size.width <= pane.size.width
        app.write_log("[info] " + " ".join(f"later{i}" for i in range(60)))
        await pilot.pause(0.2)
        assert pane.virtual_size.width <= pane.size.width


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(("screen", "keys"), [("interventions", {"h", "m", "e"}), ("train", {"t"})])
async def test_the_footer_shows_history_heat_map_and_stage_keys(app_factory, screen, keys, size) -> None:
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        await SCREENS[screen](pilot)
        shown = {key.key for key in app.screen.query_one(Footer).query("FooterKey")}
        assert keys <= shown
