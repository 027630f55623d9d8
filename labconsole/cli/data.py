"""`labconsole check-data PATH`: is this dataset folder usable, and does it match the paper's?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from labconsole.config.vocab import CheckedDataset


def render_check(report: dict[str, Any]) -> Any:
    """A rich renderable: groups × splits with found/expected, then the problems and verdict."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    header = Text()
    header.append(f"{report.get('dataset') or 'unknown dataset'}", style="bold")
    header.append(f"  layout: {report.get('layout') or '-'}  ·  {report['root']}")
    parts.append(header)
    for label, key in (("metadata", "metadata"), ("images", "image_dir")):
        value = report.get(key)
        if value:
            parts.append(Text(f"{label}: {', '.join(value) if isinstance(value, list) else value}", style="dim"))

    splits = report.get("splits") or {}
    if splits:
        table = Table(title="group counts (found / expected)", title_justify="left")
        table.add_column("group")
        for split in splits:
            table.add_column(split, justify="right")
        group_rows = next(iter(splits.values()))["groups"]
        for index, row in enumerate(group_rows):
            cells = []
            for info in splits.values():
                cell = info["groups"][index]
                style = "" if cell["difference"] == 0 else "yellow"
                diff = "" if cell["difference"] == 0 else f" ({cell['difference']:+d})"
                cells.append(Text(f"{cell['found']} / {cell['expected']}{diff}", style=style))
            table.add_row(f"{index} {row['group']}", *cells)
        table.add_row("total", *(f"{info['found']} / {info['expected']}" for info in splits.values()), style="bold")
        parts.append(table)

    opened = report.get("images_opened", 0)
    parts.append(
        Text(f"images opened: {opened} ({'all' if report.get('full') else 'a sample per split'})", style="dim")
    )
    for problem in report.get("problems", []):
        parts.append(Text(f"• {problem}", style="red" if not report.get("ok") else "yellow"))
    verdict_style = "bold green" if report.get("ok") else "bold red"
    parts.append(Text(f"verdict: {report.get('verdict', '')}", style=verdict_style))
    return Group(*parts)


def register(app: typer.Typer) -> None:
    @app.command("check-data")
    def check_data(
        path: Path = typer.Argument(..., help="dataset folder (the one holding the metadata, or its parent)"),
        dataset: CheckedDataset | None = typer.Option(None, "--dataset", help="default: detect from the files"),
        full: bool = typer.Option(False, "--full", help="open every image, not a sample of each split"),
        as_json: bool = typer.Option(False, "--json", help="print the check as JSON"),
    ) -> None:
        """Check a Waterbirds or CelebA folder: layout, group counts vs the published ones,
        missing files and columns, unreadable images. Exit code 0 if it loads, 2 if not."""
        from rich.console import Console

        from labconsole.engine.data.check import check_dataset
        from labconsole.errors import UserError

        console = Console()
        try:
            report = check_dataset(path, dataset, full=full)
        except UserError as error:
            Console(stderr=True).print(f"[red]error:[/red] {error}", highlight=False)
            raise typer.Exit(2) from None
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        else:
            console.print(render_check(report), highlight=False)
        if not report["ok"]:
            raise typer.Exit(2)
