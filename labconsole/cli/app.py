"""Command line. A bare ``labconsole`` opens the console (textual imported lazily); ``run``,
``report``, ``runs``, ``check-data`` and ``bench`` never import textual."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
import typer.core
from typer._click import Context as ClickContext  # the type TyperGroup.parse_args is declared with

from labconsole.cli import bench, data, neurons, report, ui
from labconsole.config.vocab import Device, ExecutorName
from labconsole.errors import UserError

if TYPE_CHECKING:
    from labconsole.presets import Preset

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    invoke_without_command=True,
    help="labconsole: find where an image classifier memorizes its minority groups.",
    pretty_exceptions_enable=False,
)
_state = {"debug": False}


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="show full tracebacks"),
) -> None:
    _state["debug"] = debug
    from labconsole.engine.allocator import keep_freed_memory

    keep_freed_memory()  # freed activations reused by the next batch instead of page-faulted in anew
    if ctx.invoked_subcommand is None:
        from labconsole.cli.ui import open_console

        open_console()


@app.command()
def run(
    preset: str | None = typer.Argument(
        None,
        help="preset file, e.g. presets/quickstart.toml; leave it out with --resume RUN to continue "
        "the run with its own config.toml",
    ),
    smoke: bool = typer.Option(False, "--smoke", help="tiny model, tiny data, 1-2 epochs: runs in seconds"),
    set_: list[str] = typer.Option([], "--set", help="override a preset key: --set erm.epochs=3"),
    out: Path = typer.Option(Path("runs"), "--out", help="folder for run directories"),
    device: Device | None = typer.Option(None, "--device", help="where to compute (default: the preset's)"),
    resume: Path | None = typer.Option(
        None,
        "--resume",
        help="continue an interrupted run (its own config.toml; a preset given must match it key by key) "
        "or sweep directory (give its preset)",
    ),
    data_root: str | None = typer.Option(None, "--data-root", help="dataset folder (else $LABCONSOLE_DATA)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only the final table"),
    no_report: bool = typer.Option(False, "--no-report", help="skip writing report files"),
    executor: ExecutorName = typer.Option(
        "local", "--executor", help="local: one run at a time, or one per GPU; slurm: one job per run"
    ),
    partition: str | None = typer.Option(None, "--partition", help="SLURM partition (--executor slurm)"),
    time_min: int = typer.Option(240, "--time", help="SLURM time limit per run, minutes (--executor slurm)"),
    gpus: int = typer.Option(1, "--gpus", help="GPUs per run (--executor slurm)"),
) -> None:
    """Run a preset headless and write a run directory (or a sweep of them).

    `labconsole run --resume RUN` continues an interrupted run with its own config.toml; with a
    preset too, the preset and options must match that file (differing keys are named)."""
    from labconsole.engine.executors import make_executor
    from labconsole.presets import expand_sweep, load_preset

    runner = make_executor(executor, partition=partition, time_min=time_min, gpus=gpus)

    overrides = list(set_) + ([f"device={device}"] if device else [])
    if preset is None:
        loaded = _resumed_run_preset(resume, overrides, smoke=smoke, data_root=data_root)
    else:
        loaded = load_preset(preset, overrides, smoke=smoke, data_root=data_root)
    from labconsole.cli.headless import HeadlessPrinter, finetune_control_table, finetune_line, group_table
    from labconsole.cli.headless import out as console
    from labconsole.engine.api import configure_threads, run_job

    configure_threads(keep_a_core=False)
    printer = HeadlessPrinter(quiet=quiet)
    if loaded.sweep.is_sweep or runner.kind != "local" or (resume is not None and (resume / "sweep.json").exists()):
        from labconsole.engine.sweep import run_sweep

        sweep_dir = run_sweep(
            loaded, expand_sweep(loaded), emit=printer, runs_root=out, sweep_dir=resume, executor=runner
        )
        _write_report(sweep_dir, no_report)
        typer.echo(f"sweep: {sweep_dir}")
        return
    result = run_job(loaded, emit=printer, runs_root=out, resume=resume)
    summary = result.read_summary()
    table = group_table(summary)
    if table is not None:
        console.print(table)
    story = finetune_line(summary)
    if story:
        console.print(story)
    control = finetune_control_table(summary)
    if control:
        console.print(control, highlight=False)
    if summary.finetune is not None and summary.finetune.warning:
        console.print(f"[yellow]{summary.finetune.warning}[/]")
    status = result.status()
    _write_report(result.path, no_report)
    typer.echo(f"run: {result.path}  ({status})")
    if status == "cancelled":
        typer.echo(f"resume with: labconsole run --resume {result.path}")
        raise typer.Exit(130)


def _resumed_run_preset(resume: Path | None, overrides: list[str], *, smoke: bool, data_root: str | None) -> Preset:
    """The preset of ``labconsole run --resume RUN`` given without one: the run's config.toml."""
    if resume is None:
        raise UserError(
            "labconsole run: give a preset (e.g. presets/quickstart.toml), or --resume RUN to continue a run"
        )
    if (resume / "sweep.json").exists():
        raise UserError(
            f"--resume {resume}: a sweep is continued with the preset it was started from: "
            f"labconsole run PRESET --resume {resume}"
        )
    from labconsole.engine.resume import preset_from_run

    return preset_from_run(resume, overrides, smoke=smoke, data_root=data_root)


def _write_report(path: Path, skip: bool) -> None:
    if skip:
        return
    from labconsole.report import write_report

    for written in write_report(path):
        typer.echo(f"report: {written}")


class _RunsGroup(typer.core.TyperGroup):
    """`labconsole runs [ROOT]` lists runs; `labconsole runs compare A B` is a subcommand."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:  # no ROOT given: keep the default, then the subcommand
            args = ["runs", *args]
        return super().parse_args(ctx, args)


runs_app = typer.Typer(cls=_RunsGroup, invoke_without_command=True, help="List runs; `runs compare A B`.")
app.add_typer(runs_app, name="runs")


@runs_app.callback()
def runs_cmd(
    ctx: typer.Context,
    root: Path = typer.Argument(Path("runs"), help="folder of run directories"),
    show_all: bool = typer.Option(False, "--all", help="also runs whose start was refused (never started)"),
) -> None:
    """A table of runs: preset, status, test WGA. A run whose files cannot be read is listed
    as unreadable (the file is named below the table); the others are listed as usual."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from labconsole.cli.headless import out as console
    from labconsole.cli.headless import pct
    from labconsole.engine.records import Manifest, RunFormatError, RunSummary, read_record
    from labconsole.engine.runs import STATUS_DONE, STATUS_NEVER_STARTED, list_runs

    runs = list_runs(root)
    if not runs:
        typer.echo(f"no runs in {root}")
        return
    table = Table(title=f"runs in {root}")
    for col in ("run", "preset", "variant", "status", "test WGA", "test mean"):
        table.add_column(col)
    unreadable: list[str] = []
    hidden = 0
    for r in runs:
        name = str(r.path.relative_to(root))
        try:
            manifest = read_record(Manifest, r.path / "manifest.json")
            summary = read_record(RunSummary, r.path / "summary.json")
        except RunFormatError as exc:
            unreadable.append(str(exc))
            table.add_row(name, "?", "", "[red]unreadable[/]", "—", "—")
            continue
        status = STATUS_DONE if r.is_done else manifest.status
        if status == STATUS_NEVER_STARTED and not show_all:
            hidden += 1
            continue
        test = summary.splits.get("test")
        table.add_row(
            name,
            manifest.preset or "?",
            manifest.variant,
            status,
            pct(test.wga if test else None),
            pct(test.mean if test else None),
        )
    console.print(table)
    for problem in unreadable:
        typer.secho(f"unreadable: {problem}", err=True, fg=typer.colors.YELLOW)
    if hidden:
        typer.echo(f"({hidden} run(s) that never started are hidden; --all lists them)")


# Command groups of the feature areas, each in its own module.
for _register in (data.register, neurons.register, report.register, bench.register, ui.register):
    _register(app)


def main() -> None:
    try:
        # standalone_mode=False returns typer.Exit's code instead of raising it.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except UserError as exc:
        if _state["debug"]:
            raise
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as exc:  # a full, read-only or foreign disk is the user's to fix: say where
        from labconsole.engine.storage import storage_error

        problem = storage_error(exc)
        if problem is None or _state["debug"]:
            raise
        typer.secho(f"error: {problem}", err=True, fg=typer.colors.RED)
        sys.exit(problem.exit_code)
    except Exception as exc:  # usage errors (a bad option value) and the like
        # Typer raises its own copy of click's exceptions (typer.TyperException), not click's.
        import click

        usage = getattr(exc, "show", None)
        if isinstance(exc, (click.ClickException, typer.TyperException)) and callable(usage):
            usage()
            sys.exit(int(getattr(exc, "exit_code", 2)))
        if _state["debug"]:
            raise
        typer.secho(
            f"error: {type(exc).__name__}: {exc}  (run with --debug for the traceback)", err=True, fg=typer.colors.RED
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
