"""``labconsole bench session``: the console's Stage I calls, timed on the fast and the plain
path in one process (see ``labconsole.engine.stage1.session_bench``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer


def bench_session(
    checkpoint: str | None = typer.Option(
        None, "--checkpoint", help="a quickstart run directory (default: the newest in runs/, else an untrained one)"
    ),
    runs_root: str = typer.Option("runs", "--runs", help="where to look for a quickstart run"),
    repeats: int = typer.Option(1, "--repeats", help="repetitions of the whole sequence (medians shown)"),
    seeds: int = typer.Option(10, "--seeds", help="seeds of the noise readout"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Time session open, rankings and readouts (estimate and exact) against the plain path."""
    from labconsole.engine.stage1.session_bench import (
        format_session,
        fresh_quickstart_run,
        measure_session,
        newest_quickstart_run,
    )
    from labconsole.errors import UserError

    try:
        with tempfile.TemporaryDirectory(prefix="labconsole-bench-session-") as tmp:
            run = Path(checkpoint) if checkpoint else newest_quickstart_run(Path(runs_root))
            if run is None:
                typer.echo("no quickstart run in runs/: timing an untrained quickstart model", err=True)
                run = fresh_quickstart_run(Path(tmp))
            result = measure_session(run, repeats=repeats, seeds=seeds)
    except UserError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(result, indent=2) if as_json else format_session(result))
