"""Any JSON value → tables, for stages and artifacts that have no specific renderer.

A list of flat rows becomes one table; a dict of rows becomes a table keyed by the dict's keys;
a dict mixing scalars and structures becomes a key/value table plus a table per structure.
Nested dicts inside a row are flattened to dotted columns; long lists are abbreviated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from labconsole.report.doc import Block, Table, Text, num, short

MAX_ROWS = 200
MAX_COLUMNS = 24
MAX_DEPTH = 3


def is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def flatten_row(row: Mapping[str, object], prefix: str = "", depth: int = 0) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in row.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and depth < 2 and value and len(value) <= 12:
            out.update(flatten_row(value, name, depth + 1))
        else:
            out[name] = value
    return out


def cell(value: object) -> str:
    if isinstance(value, list) and all(is_scalar(v) for v in value):
        body = ", ".join(num(v) for v in value[:8])
        return f"[{body}{', …' if len(value) > 8 else ''}]" + (f" ({len(value)})" if len(value) > 8 else "")
    if isinstance(value, (dict, list)):
        return short(value, 80)
    return num(value)


def rows_table(
    rows: Sequence[Mapping[str, object]], title: str, key_column: str | None = None, keys: list[str] | None = None
) -> Table:
    flat = [flatten_row(r) for r in rows[:MAX_ROWS]]
    columns: list[str] = []
    for row in flat:
        for name in row:
            if name not in columns:
                columns.append(name)
    notes = []
    if len(columns) > MAX_COLUMNS:
        notes.append(f"{len(columns) - MAX_COLUMNS} more columns in the file")
        columns = columns[:MAX_COLUMNS]
    if len(rows) > MAX_ROWS:
        notes.append(f"first {MAX_ROWS} of {len(rows)} rows")
    body = [([keys[i]] if keys else []) + [cell(row.get(c)) for c in columns] for i, row in enumerate(flat)]
    header = ([key_column or ""] if keys else []) + columns
    return Table(columns=header, rows=body, title=title, caption="; ".join(notes))


def json_blocks(value: object, title: str, depth: int = 0) -> list[Block]:
    """Blocks showing ``value``; never raises on odd shapes (falls back to a JSON excerpt)."""
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return [rows_table(value, title)]
        if all(is_scalar(v) for v in value):
            return [Table(columns=["value"], rows=[[cell(value)]], title=title)] if value else []
    elif isinstance(value, dict):
        if not value:
            return []
        if all(isinstance(v, dict) for v in value.values()) and _row_like(value):
            keys = list(value)[:MAX_ROWS]
            return [rows_table([value[k] for k in keys], title, key_column="key", keys=[str(k) for k in keys])]
        scalars = {k: v for k, v in value.items() if is_scalar(v) or _short_list(v)}
        blocks: list[Block] = []
        if scalars:
            blocks.append(
                Table(columns=["key", "value"], rows=[[str(k), cell(v)] for k, v in scalars.items()], title=title)
            )
        if depth < MAX_DEPTH:
            for key, sub in value.items():
                if key not in scalars:
                    blocks.extend(json_blocks(sub, f"{title} › {key}", depth + 1))
        return blocks
    elif is_scalar(value):
        return [Table(columns=["value"], rows=[[cell(value)]], title=title)]
    return [Text(_excerpt(value), kind="details-code", title=title)]


def _short_list(value: object) -> bool:
    return isinstance(value, list) and len(value) <= 12 and all(is_scalar(v) for v in value)


def _row_like(value: dict[str, object]) -> bool:
    """A dict of dicts is a table when its inner dicts share keys and hold mostly scalars."""
    inner = [v for v in value.values() if isinstance(v, dict)]
    if not inner:
        return False
    first = set(inner[0])
    shared = all(set(v) & first for v in inner[1:]) if len(inner) > 1 else True
    scalar_share = sum(1 for v in inner for x in v.values() if is_scalar(x) or isinstance(x, dict))
    total = sum(len(v) for v in inner) or 1
    return shared and scalar_share / total > 0.6


def _excerpt(value: object, limit: int = 4000) -> str:
    try:
        text = json.dumps(value, indent=1, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "\n…"
