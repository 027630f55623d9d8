"""report.html: one self-contained file (inline CSS, figures as base64 PNG, no external assets)."""

from __future__ import annotations

import base64
import html
import re

from labconsole.report.doc import MISSING, Figure, Report, Table, Text

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1180px; padding: 1.5em 2em; color: #1d1d1f; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em;
margin-top: 2em; } h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
.subtitle { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.4em 0 0.2em; font-size: 0.86em; }
th, td { border: 1px solid #d0d0d0; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #f2f4f7; } td:first-child, th:first-child { text-align: left; }
tr.break td { border-top: 2px solid #888; } th.text, td.text { text-align: left; }
td.ranked { font-weight: bold; } td.large { color: #b00020; font-weight: bold; }
.caption { color: #555; font-size: 0.82em; margin: 0 0 1em; max-width: 1100px; }
.warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.5em 0.8em; margin: 0.6em 0; }
.note { background: #eef4fb; border-left: 4px solid #5b8fd0; padding: 0.5em 0.8em; margin: 0.6em 0; }
figure { margin: 0.8em 0 1.2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.82em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
nav { font-size: 0.85em; margin: 1em 0; } nav a { margin-right: 1em; }
table.kv td { text-align: left; }
.status-done { color: #1a7f37; } .status-bad { color: #b00020; font-weight: bold; }
"""


def render_html(report: Report) -> str:
    status_class = "status-done" if report.status == "done" else "status-bad"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(report.title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_e(report.title)}</h1>",
        f'<p class="subtitle">{_e(report.kind)} report · <span class="{status_class}">{_e(report.status)}</span>'
        f" · {_e(report.path)}</p>",
    ]
    links = [f'<a href="#{_anchor(s.anchor or s.title)}">{_e(s.title)}</a>' for s in report.sections]
    parts.append("<nav>" + " ".join(links) + "</nav>")
    for section in report.sections:
        parts.append(f'<h2 id="{_anchor(section.anchor or section.title)}">{_e(section.title)}</h2>')
        for block in section.blocks:
            parts.append(_block(block))
    parts.append("</body></html>")
    return "\n".join(parts)


def _block(block: object) -> str:
    if isinstance(block, Table):
        return table_html(block)
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        title = f"<h3>{_e(block.title)}</h3>" if block.title else ""
        source = f" ({_e(block.source)})" if block.source else ""
        caption = f"<figcaption>{_e(block.caption)}{source}</figcaption>" if block.caption or source else ""
        return f'{title}<figure><img alt="{_e(block.title)}" src="data:image/png;base64,{data}">{caption}</figure>'
    if isinstance(block, Text):
        if block.kind == "code":
            return f"<pre>{_e(block.text)}</pre>"
        if block.kind == "details-code":
            return f"<details><summary>{_e(block.title or 'details')}</summary><pre>{_e(block.text)}</pre></details>"
        if block.kind in ("warning", "note"):
            return f'<div class="{block.kind}">{_e(block.text)}</div>'
        return f"<p>{_e(block.text)}</p>"
    return ""


def table_html(table: Table) -> str:
    out = [f"<h3>{_e(table.title)}</h3>"] if table.title else []
    out.append("<table>" if any(table.columns) else '<table class="kv">')
    text = _text_columns(table)
    if any(table.columns):
        heads = (
            f'<th class="text">{_e(c)}</th>' if j in text else f"<th>{_e(c)}</th>" for j, c in enumerate(table.columns)
        )
        out.append("<thead><tr>" + "".join(heads) + "</tr></thead>")
    out.append("<tbody>")
    breaks = set(table.section_breaks)
    for i, row in enumerate(table.rows):
        cells = []
        for j, value in enumerate(row):
            css = " ".join(c for c in (table.emphasis.get((i, j)), "text" if j in text else "") if c)
            cells.append(f'<td class="{css}">{_e(value)}</td>' if css else f"<td>{_e(value)}</td>")
        out.append(f"<tr{' class=break' if i in breaks else ''}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if table.caption:
        out.append(f'<p class="caption">{_e(table.caption)}</p>')
    return "\n".join(out)


# A cell that reads as a number: "0.412", "−3", "1e-05", "0.412 ± 0.031", "64.0 (n=5)", "12%".
NUMBER_CELL = re.compile(r"^\s*[-+−]?(\d[\d,]*\.?\d*|\.\d+)(e[-+]?\d+)?\b")


def _text_columns(table: Table) -> set[int]:
    """Columns (after the first, which is always left-aligned) holding words, not numbers: they
    read left-aligned; numbers stay right-aligned so their digits line up."""
    text = set()
    for j in range(1, max((len(r) for r in table.rows), default=0)):
        cells = [str(r[j]).strip() for r in table.rows if j < len(r)]
        cells = [c for c in cells if c and c not in (MISSING, "-", "?")]
        if cells and not all(NUMBER_CELL.match(c) for c in cells):
            text.add(j)
    return text


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "section"
