"""Scripted walks through every screen on the FakeEngine: used for the SVG screenshots in
``docs/img`` (``python -m labconsole.ui.screenshots docs/img``) and by the snapshot tests.

The FakeEngine's numbers are made up (deterministic, plausible); screenshots show the layout,
not results.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until ``condition()`` holds (workers are real threads)."""
    waited = 0.0
    while not condition():
        if waited >= timeout:
            raise TimeoutError("the console did not reach the expected state in time")
        await pilot.pause(0.02)
        waited += 0.02


async def settle(pilot: Any) -> None:
    """No caret, no toast, no pending redraw in the picture; the footer's keys laid out again
    after the focus moved (on a loaded machine that can take longer than the pause)."""
    pilot.app.set_focus(None)
    pilot.app.clear_notifications()
    await pilot.pause(0.3)
    if not pilot.app.screen.is_modal:
        await wait_for(pilot, lambda: bool(list(pilot.app.screen.query("FooterKey"))))


async def open_session(pilot: Any) -> None:
    app = pilot.app
    await app.switch_mode("setup")
    await pilot.pause()
    await pilot.press("o")
    await wait_for(pilot, lambda: app.session is not None)


async def show_setup(pilot: Any) -> None:
    await wait_for(pilot, lambda: len(pilot.app.screen.query_one("#checkpoint-run").options) > 1)
    await settle(pilot)


async def show_neurons(pilot: Any) -> None:
    await open_session(pilot)
    await pilot.press("2")
    await wait_for(pilot, lambda: pilot.app.screen.query_one("#ranking").row_count == 10)
    ranking = pilot.app.screen.ranking
    pilot.app.set_marked([ranking[0][:2], ranking[2][:2]])
    await settle(pilot)


async def show_interventions(pilot: Any) -> None:
    await open_session(pilot)
    pilot.app.set_marked([("layer3.0.conv2", 4), ("layer2.0.conv1", 7), ("layer3.0.downsample.0", 12)])
    await pilot.press("3")
    await pilot.press("a")
    await wait_for(pilot, lambda: len(pilot.app.screen.history) == 1)
    await settle(pilot)


async def show_heat_map(pilot: Any) -> None:
    from labconsole.ui.dialogs.heat_map import HeatMapDialog

    await open_session(pilot)
    await settle(pilot)  # the session's toast is gone before the dialog opens
    await pilot.press("3", "m")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, HeatMapDialog), timeout=20)
    await settle(pilot)


async def show_train(pilot: Any) -> None:
    await pilot.press("4")
    await wait_for(pilot, lambda: pilot.app.screen.presets != [])
    pilot.app.set_focus(None)
    await pilot.press("g")
    await wait_for(pilot, lambda: pilot.app.job.status == "done")
    await settle(pilot)


async def show_train_epochs(pilot: Any) -> None:
    """ERM then fine-tuning, the Epochs view: every split's per-group accuracy per epoch."""
    from labconsole.ui.widgets.choice import Choice

    await pilot.press("4")
    await wait_for(pilot, lambda: pilot.app.screen.presets != [])
    pilot.app.screen.query_one("#preset", Choice).value = "presets/finetune.toml"
    await pilot.pause()
    pilot.app.set_focus(None)
    await pilot.press("g")
    await wait_for(pilot, lambda: pilot.app.job.status == "done")
    await pilot.press("v")
    await settle(pilot)


async def show_rare(pilot: Any) -> None:
    await pilot.press("5")
    await pilot.press("g")
    await wait_for(pilot, lambda: pilot.app.screen.query_one("#rare-table").row_count == 7)
    await settle(pilot)


async def show_runs(pilot: Any) -> None:
    await pilot.press("6")
    await wait_for(pilot, lambda: pilot.app.screen.query_one("#runs-table").row_count == 4)
    await wait_for(pilot, lambda: pilot.app.screen.summaries != {})
    await settle(pilot)


SCREENS: dict[str, Callable[[Any], Awaitable[None]]] = {
    "setup": show_setup,
    "neurons": show_neurons,
    "interventions": show_interventions,
    "heat-map": show_heat_map,
    "train": show_train,
    "train-epochs": show_train_epochs,
    "rare": show_rare,
    "runs": show_runs,
}


async def save_screenshots(folder: Path, size: tuple[int, int] = (100, 30)) -> list[Path]:
    import os
    import tempfile

    from labconsole.ui.app import create_app
    from labconsole.ui.fake_engine import FakeEngine

    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as scratch:  # session records of the walks go here
        os.chdir(scratch)
        try:
            for name, walk in SCREENS.items():
                app = create_app(FakeEngine(), deterministic=True, runs_root="runs")
                async with app.run_test(size=size) as pilot:
                    await walk(pilot)
                    written.append(Path(app.save_screenshot(f"console-{name}.svg", path=str(folder))))
        finally:
            os.chdir(here)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
    for path in asyncio.run(save_screenshots(target)):
        print(path)
