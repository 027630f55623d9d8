"""Time to first paint of the console against a plain Textual app, for ``labconsole bench startup``.

Each measurement is a fresh Python process (``python -m labconsole.ui.startup [--bare]``), timed
from just before the process is spawned to the moment the first screen has been mounted and
refreshed, so the interpreter start and every import are counted. Both apps run headless at the
same size. The plain app (a line of text and a footer) is what any Textual program pays; the
ratio says how much the console adds on top, on this machine, in this run.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

LIMIT_S = 1.5


@dataclass(frozen=True)
class StartupTiming:
    first_paint_s: float  # spawn → first screen painted
    import_s: float  # importing the app's module inside the child
    mount_s: float  # app created → first screen mounted and refreshed
    torch_imported: bool  # whether torch was in sys.modules at first paint


def _bare_app() -> Any:
    from textual.app import App, ComposeResult
    from textual.widgets import Footer, Static

    class PlainApp(App[None]):
        def __init__(self) -> None:
            super().__init__()
            self.created_at = time.perf_counter()
            self.first_paint_s: float | None = None

        def compose(self) -> ComposeResult:
            yield Static("hello")
            yield Footer()

        def on_mount(self) -> None:
            self.call_after_refresh(self._painted)

        def _painted(self) -> None:
            self.first_paint_s = time.perf_counter() - self.created_at

    return PlainApp()


def probe(size: tuple[int, int] = (100, 30), *, bare: bool = False) -> dict[str, float | bool]:
    """Runs in the child process: import, build and run the app headless until first paint."""
    started = time.perf_counter()
    if bare:
        app = _bare_app()
    else:
        from labconsole.ui.app import create_app

        app = create_app()  # the real engine adapter: what `labconsole` starts with
    imported = app.created_at

    async def run() -> None:
        async with app.run_test(size=size) as pilot:
            while app.first_paint_s is None:
                await pilot.pause(0.005)
            painted["at"] = time.time()
            painted["torch"] = "torch" in sys.modules

    painted: dict[str, float | bool] = {}
    asyncio.run(run())
    return {
        "painted_at": painted["at"],
        "import_s": imported - started,
        "mount_s": float(app.first_paint_s or 0.0),
        "torch_imported": bool(painted["torch"]),
    }


def measure_startup(python: str = sys.executable, *, bare: bool = False) -> StartupTiming:
    spawned = time.time()
    command = [python, "-m", "labconsole.ui.startup"] + (["--bare"] if bare else [])
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return StartupTiming(
        first_paint_s=float(report["painted_at"]) - spawned,
        import_s=float(report["import_s"]),
        mount_s=float(report["mount_s"]),
        torch_imported=bool(report["torch_imported"]),
    )


def compare_startup(repeat: int, python: str = sys.executable) -> tuple[list[StartupTiming], list[StartupTiming]]:
    """(console timings, plain-app timings), interleaved so that both see the same machine load."""
    ours, plain = [], []
    for _ in range(repeat):
        ours.append(measure_startup(python))
        plain.append(measure_startup(python, bare=True))
    return ours, plain


if __name__ == "__main__":
    print(json.dumps(probe(bare="--bare" in sys.argv[1:])))
