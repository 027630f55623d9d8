"""report.md (figures linked as files next to it) and report.svg (the main table, via rich)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

from labconsole.report.doc import Figure, Report, Table, Text

if TYPE_CHECKING:
    from rich.table import Table as RichTable

FIGURES_DIR = "report_figures"


def render_markdown(report: Report, folder: Path) -> tuple[str, list[Path]]:
    """The markdown text and the figure files it links (written under ``folder``)."""
    lines = [f"# {report.title}", "", f"*{report.kind} report · status: **{report.status}** · {report.path}*", ""]
    written: list[Path] = []
    used: set[str] = set()
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines += table_markdown(block) + [""]
            elif isinstance(block, Figure):
                target = _figure_file(block, folder, used)
                if target is None:
                    continue
                if not (block.source and (folder / block.source).exists()):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(block.png)
                    written.append(target)
                rel = target.relative_to(folder).as_posix()
                lines += [f"**{block.title}**", "", f"![{block.title}]({rel})", ""]
                if block.caption:
                    lines += [f"*{_cell(block.caption)}*", ""]
            elif isinstance(block, Text):
                lines += _text(block) + [""]
    return "\n".join(lines).rstrip() + "\n", written


def _figure_file(block: Figure, folder: Path, used: set[str]) -> Path | None:
    if block.source and (folder / block.source).exists():
        return folder / block.source
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", block.title or "figure").strip("-")[:60] or "figure"
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}-{n}"
    used.add(name)
    return folder / FIGURES_DIR / f"{name}.png"


def table_markdown(table: Table) -> list[str]:
    out = [f"**{table.title}**", ""] if table.title else []
    columns = [c or " " for c in table.columns]
    out.append("| " + " | ".join(_cell(c) for c in columns) + " |")
    out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|")
    for i, row in enumerate(table.rows):
        cells = []
        for j, value in enumerate(row):
            text = _cell(value)
            cells.append(f"**{text}**" if table.emphasis.get((i, j)) and text else text)
        out.append("| " + " | ".join(cells) + " |")
    if table.caption:
        out += ["", f"*{_cell(table.caption)}*"]
    return out


def _text(block: Text) -> list[str]:
    if block.kind in ("code", "details-code"):
        head = [f"<details><summary>{block.title}</summary>", ""] if block.kind == "details-code" else []
        tail = ["", "</details>"] if block.kind == "details-code" else []
        return head + ["```", block.text.rstrip(), "```"] + tail
    if block.kind == "warning":
        return [f"> **Warning:** {block.text}"]
    if block.kind == "note":
        return [f"> {block.text}"]
    return [block.text]


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_svg(report: Report) -> str | None:
    """The main table as an SVG (rich's console export), or None when there is no main table."""
    table = report.main_table
    if table is None:
        return None
    from rich.console import Console

    rich_table = to_rich(table)
    width = min(
        200,
        max(
            60,
            sum(
                max(len(str(c)) for c in [col] + [r[j] for r in table.rows if j < len(r)]) + 3
                for j, col in enumerate(table.columns)
            )
            + 4,
        ),
    )
    console = Console(record=True, width=width, file=io.StringIO(), color_system="truecolor")
    console.print(rich_table)
    return console.export_svg(title=report.title)


def to_rich(table: Table) -> RichTable:
    """A report table as a rich table: the SVG export and the headless runner print the same
    tables as the HTML report."""
    from rich.table import Table as RichTable

    rich_table = RichTable(title=table.title, caption=table.caption or None)
    for i, column in enumerate(table.columns):
        rich_table.add_column(column, justify="left" if i == 0 else "right")
    breaks = set(table.section_breaks)
    for i, row in enumerate(table.rows):
        if i in breaks:
            rich_table.add_section()
        rich_table.add_row(*(str(c) for c in row))
    return rich_table
