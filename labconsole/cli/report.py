"""``labconsole report DIR`` and ``labconsole runs compare A B`` (rich only, never textual)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labconsole.formatting import MISSING

if TYPE_CHECKING:  # pydantic records; imported when a command runs, so --help stays fast
    from labconsole.engine.records import MeanSE

COMPARED_PREFIXES = ("splits.", "model.splits.", "finetune.splits.", "finetune.wga_")


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
    for group in app.registered_groups:
        if group.name == "runs" and group.typer_instance is not None:
            group.typer_instance.command("compare")(compare_cmd)


def report_cmd(
    path: Path = typer.Argument(..., help="a run directory or a sweep directory"),
    formats: str = typer.Option("html,md,json,svg", "--format", help="comma-separated: html, md, json, svg"),
) -> None:
    """Write report.html (self-contained), report.md, report.json and report.svg for a run or sweep."""
    from labconsole.report import write_report

    refuse_foreign_folder(path)
    for written in write_report(path, formats):
        typer.echo(f"report: {written}")


# Keys every manifest.json written by labconsole has: a folder whose manifest lacks them
# belongs to something else (a web app, another tool) and gets no report files.
MANIFEST_KEYS = ("preset", "stages", "status")
# A console session record trains nothing, so its manifest has no stages: its kind and the
# model it used identify it instead.
SESSION_MANIFEST_KEYS = ("preset", "status", "kind", "model")


def refuse_foreign_folder(path: Path) -> None:
    """UserError (nothing written) unless ``path`` is a labconsole run or sweep directory:
    a stray ``config.toml`` or someone else's ``manifest.json`` does not make a run."""
    import json

    from labconsole.errors import UserError

    if not path.is_dir() or (path / "sweep.json").exists():
        return  # the report's own checks name what is wrong with a missing path or a file
    manifest = path / "manifest.json"
    if not manifest.exists():
        if (path / "config.toml").exists():
            raise UserError(
                f"report: {path} has a config.toml but no manifest.json: not a labconsole run directory "
                "(nothing written)"
            )
        return
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise UserError(f"report: {manifest} cannot be read ({exc}); nothing written") from None
    if isinstance(data, dict) and is_session_manifest(data):
        return
    if not isinstance(data, dict) or any(key not in data for key in MANIFEST_KEYS):
        raise UserError(
            f"report: {manifest} is not a labconsole run manifest (it has no {', '.join(MANIFEST_KEYS)} keys): "
            f"{path} is not a run directory (nothing written)"
        )


def is_session_manifest(data: Mapping[str, object]) -> bool:
    from labconsole.report.session_sections import KIND

    return data.get("kind") == KIND and all(key in data for key in SESSION_MANIFEST_KEYS)


def compare_cmd(
    first: Path = typer.Argument(..., help="run or sweep directory A"),
    second: Path = typer.Argument(..., help="run or sweep directory B"),
    show_all: bool = typer.Option(False, "--all", help="every number, not only accuracies"),
) -> None:
    """Two runs or sweeps side by side: accuracies (%), B − A."""
    from rich.table import Table

    from labconsole.cli.headless import out as console

    title_a, numbers_a = comparable_numbers(first, show_all)
    title_b, numbers_b = comparable_numbers(second, show_all)
    labels = list(numbers_a) + [k for k in numbers_b if k not in numbers_a]
    if not labels:
        typer.echo("nothing to compare: neither directory has finished numbers yet")
        return
    table = Table(
        title="runs compare (accuracies in %, mean ± s.e. (n) for sweeps)", caption=f"A = {title_a}\nB = {title_b}"
    )
    table.add_column("number")
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    table.add_column("B − A", justify="right")
    for label in labels:
        a, b = numbers_a.get(label), numbers_b.get(label)
        diff = b.mean - a.mean if a and b and a.mean is not None and b.mean is not None else None
        table.add_row(_pretty(label), _text(a), _text(b), MISSING if diff is None else f"{diff:+.2f}")
    console.print(table)


def comparable_numbers(path: Path, show_all: bool = False) -> tuple[str, dict[str, MeanSE]]:
    """label → mean, s.e. and n (fractions as %) for a run or a sweep."""
    from labconsole.engine.records import MeanSE
    from labconsole.report.source import classify, load_run, load_sweep
    from labconsole.report.sweep_sections import combo_label

    kind = classify(path)
    out: dict[str, MeanSE] = {}
    if kind == "run":
        run = load_run(path)
        flat = run.summary.numbers()
        for name in _chosen(flat, show_all):
            out[name] = MeanSE(mean=_percent(name, flat[name]), n=1)
        return f"{run.preset_name} ({path.name}, {run.status})", out
    sweep = load_sweep(path)
    for combo in sweep.aggregate.combinations:
        means = {name: stats.mean for name, stats in combo.metrics.items() if stats.mean is not None}
        for name in _chosen(means, show_all):
            stats = combo.metrics[name]
            out[f"{combo_label(combo.point)} · {name}"] = MeanSE(
                mean=_percent(name, means[name]),
                se=None if stats.se is None else _percent(name, stats.se),
                n=stats.n,
            )
    return f"{sweep.preset_name} sweep ({path.name}, {sweep.aggregate.runs.done} runs done)", out


def _chosen(flat: Mapping[str, float], show_all: bool) -> list[str]:
    if show_all:
        return list(flat)
    picked = [
        n
        for n in flat
        if n.startswith(COMPARED_PREFIXES) and ".group_counts." not in n and not n.endswith((".n", "wga_quantum"))
    ]
    return picked or list(flat)[:60]


def _percent(name: str, value: float) -> float:
    accuracy = not name.endswith("_pp") and ("splits." in name or name.startswith("finetune.wga_"))
    return 100.0 * value if accuracy else value


def _text(stats: MeanSE | None) -> str:
    if stats is None or stats.mean is None:
        return MISSING
    text = f"{stats.mean:.2f}"
    if stats.se is not None:
        text += f" ± {stats.se:.2f}"
    if stats.n != 1:
        text += f" (n={stats.n})"
    return text


def _pretty(label: str) -> str:
    """``splits.test.groups.landbird-water`` → ``test landbird-water``."""
    return (
        label.replace("finetune.splits.", "finetune ")
        .replace("model.splits.", "")
        .replace("splits.", "")
        .replace(".groups.", " ")
        .replace(".", " ")
    )
