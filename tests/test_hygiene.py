"""Architecture rules that must not erode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "labconsole"


def test_engine_and_run_path_never_import_textual() -> None:
    code = (
        "import sys\n"
        "import labconsole.engine.api, labconsole.engine.train.erm, labconsole.engine.pipeline\n"
        "import labconsole.cli, labconsole.cli.headless, labconsole.presets\n"
        "assert 'textual' not in sys.modules, 'textual imported'\n"
        "bad = [m for m in sys.modules if m.startswith('labconsole.ui')]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_engine_sources_import_no_ui_library() -> None:
    offenders = []
    for path in (PACKAGE / "engine").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and any(
                f"{kw} {lib}" in stripped for kw in ("import", "from") for lib in ("textual", "rich")
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}: {stripped}")
    assert not offenders, offenders


def test_modules_stay_small() -> None:
    big = [
        f"{p.relative_to(PACKAGE)} ({n})" for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 450
    ]
    assert not big, f"modules past ~400 lines: {big}"
