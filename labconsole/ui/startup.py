"""Time to first paint of the console, for ``labconsole bench startup``.

Measured in a fresh Python process (``python -m labconsole.ui.startup``), from just before the
process is spawned to the moment the first screen has been mounted and refreshed, so the
interpreter start and every import the console does are counted. The app runs headless.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass

LIMIT_S = 1.5


@dataclass(frozen=True)
class StartupTiming:
    first_paint_s: float  # spawn → first screen painted
    import_s: float  # importing labconsole.ui.app inside the child
    mount_s: float  # create_app → first screen mounted and refreshed
    torch_imported: bool  # whether torch was in sys.modules at first paint


def probe(size: tuple[int, int] = (100, 30)) -> dict[str, float | bool]:
    """Runs in the child process: import, build and run the app headless until first paint."""
    started = time.perf_counter()
    from labconsole.ui.app import create_app

    imported = time.perf_counter()
    app = create_app()  # the real engine adapter: what `labconsole` starts with

    async def run() -> None:
        async with app.run_test(size=size) as pilot:
            while app.first_paint_s is None:
                await pilot.pause(0.005)
            painted["at"] = time.time()
            painted["torch"] = "torch" in sys.modules

    painted: dict[str, float | bool] = {}
    asyncio.run(run())
    return {"painted_at": painted["at"], "import_s": imported - started,
            "mount_s": float(app.first_paint_s or 0.0), "torch_imported": bool(painted["torch"])}


def measure_startup(python: str = sys.executable) -> StartupTiming:
    spawned = time.time()
    out = subprocess.run([python, "-m", "labconsole.ui.startup"], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return StartupTiming(first_paint_s=float(report["painted_at"]) - spawned, import_s=float(report["import_s"]),
                         mount_s=float(report["mount_s"]), torch_imported=bool(report["torch_imported"]))


if __name__ == "__main__":
    print(json.dumps(probe()))
