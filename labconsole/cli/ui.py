"""CLI commands that belong to the console: the launcher and ``bench startup``.

Only ``launch_console`` imports textual (lazily); ``bench startup`` measures in a child process.
"""

from __future__ import annotations

import sys

import typer


def launch_console(runs_root: str = "runs") -> None:
    """Open the console. Without a terminal, say what to use instead and exit 2."""
    if not sys.stdout.isatty():
        typer.echo("labconsole: the console needs a terminal; for headless runs use `labconsole run PRESET`", err=True)
        raise typer.Exit(2)
    from labconsole.ui.app import create_app

    create_app(runs_root=runs_root).run()


def open_console() -> None:
    """What a bare `labconsole` calls."""
    launch_console()


def console_command(
    runs_root: str = typer.Option("runs", "--runs-root", help="folder holding run directories"),
) -> None:
    """Open the interactive console (the same as a bare `labconsole`)."""
    launch_console(runs_root)


def bench_startup(
    repeat: int = typer.Option(5, "--repeat", min=1, help="fresh processes to time, per app"),
    check: bool = typer.Option(False, "--check", help="exit 1 when above the 1.5 s budget"),
) -> None:
    """Time from process start to the first painted screen: the console against a plain Textual
    app (a line of text and a footer), each in fresh processes, interleaved, in the same run."""
    from labconsole.ui.startup import LIMIT_S, compare_startup

    ours, plain = compare_startup(repeat)
    for i, (t, p) in enumerate(zip(ours, plain), start=1):
        typer.echo(
            f"run {i}: console {t.first_paint_s:.3f} s (import {t.import_s:.3f} s, first screen "
            f"{t.mount_s:.3f} s, torch imported: {'yes' if t.torch_imported else 'no'}) · "
            f"plain Textual app {p.first_paint_s:.3f} s"
        )
    best = min(t.first_paint_s for t in ours)
    best_plain = min(p.first_paint_s for p in plain)
    typer.echo(
        f"time to first paint (best of {repeat}): console {best:.3f} s · plain Textual app "
        f"{best_plain:.3f} s · ratio {best / best_plain:.2f}× (budget {LIMIT_S} s)"
    )
    if check and (best > LIMIT_S or any(t.torch_imported for t in ours)):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `console` and `bench startup` to the main Typer app (reusing its `bench` group if any)."""
    app.command("console")(console_command)
    bench = next(
        (
            group.typer_instance
            for group in app.registered_groups
            if group.name == "bench" and group.typer_instance is not None
        ),
        None,
    )
    if bench is None:
        bench = typer.Typer(help="Benchmarks that print numbers.", no_args_is_help=True)
        app.add_typer(bench, name="bench")
    bench.command("startup")(bench_startup)
