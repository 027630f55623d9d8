"""CLI commands that belong to the console: the launcher and ``bench startup``.

Only ``launch_console`` imports textual (lazily); ``bench startup`` measures in a child process.
"""

from __future__ import annotations

import sys

import typer


def launch_console(runs_root: str = "runs") -> None:
    """Open the console. Without a terminal, say what to use instead and exit 2."""
    if not sys.stdout.isatty():
        typer.echo("labconsole: the console needs a terminal; for headless runs use `labconsole run PRESET`",
                   err=True)
        raise typer.Exit(2)
    from labconsole.ui.app import create_app

    create_app(runs_root=runs_root).run()


def open_console() -> None:
    """What a bare `labconsole` calls."""
    launch_console()


def console_command(runs_root: str = typer.Option("runs", "--runs-root", help="folder holding run directories")) -> None:
    """Open the interactive console (the same as a bare `labconsole`)."""
    launch_console(runs_root)


def bench_startup(repeat: int = typer.Option(3, "--repeat", min=1, help="fresh processes to time"),
                  check: bool = typer.Option(False, "--check", help="exit 1 when above the 1.5 s budget")) -> None:
    """Time from process start to the console's first painted screen (headless)."""
    from labconsole.ui.startup import LIMIT_S, measure_startup

    timings = [measure_startup() for _ in range(repeat)]
    best = min(timings, key=lambda t: t.first_paint_s)
    for i, t in enumerate(timings, start=1):
        typer.echo(f"run {i}: first paint {t.first_paint_s:.3f} s (import {t.import_s:.3f} s, "
                   f"mount {t.mount_s:.3f} s, torch imported: {'yes' if t.torch_imported else 'no'})")
    typer.echo(f"time to first paint: {best.first_paint_s:.3f} s (best of {repeat}; budget {LIMIT_S} s)")
    if check and (best.first_paint_s > LIMIT_S or best.torch_imported):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `console` and `bench startup` to the main Typer app (reusing its `bench` group if any)."""
    app.command("console")(console_command)
    bench = next((group.typer_instance for group in app.registered_groups
                  if group.name == "bench" and group.typer_instance is not None), None)
    if bench is None:
        bench = typer.Typer(help="Benchmarks that print numbers.", no_args_is_help=True)
        app.add_typer(bench, name="bench")
    bench.command("startup")(bench_startup)
