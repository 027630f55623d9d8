"""The console launcher and start-up: no terminal → hint and exit 2; no torch before first paint."""

from __future__ import annotations

import subprocess
import sys

import typer
from typer.testing import CliRunner

from labconsole.cli.ui import register


def test_without_a_terminal_the_console_prints_a_hint_and_exits_2() -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["console"])
    assert result.exit_code == 2
    assert "labconsole run" in result.output


def test_bench_startup_is_registered_under_bench() -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 0 and "startup" in result.output


def test_the_console_paints_without_importing_torch_or_textual_leaking() -> None:
    code = "import json; from labconsole.ui.startup import probe; print(json.dumps(probe()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    report = out.stdout.strip().splitlines()[-1]
    assert '"torch_imported": false' in report
