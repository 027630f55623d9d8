"""A small document model every report is built from, and the number formats it uses.

Section builders produce ``Section``s of ``Table``/``Figure``/``Text`` blocks from a run or sweep
directory; the html, markdown, json and svg writers only walk this model. Keeping the content in
one place is what makes the four formats say the same thing.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labconsole.engine.records import MeanSE

# The section builders take the product's one number format from here.
from labconsole.formatting import MISSING as MISSING
from labconsole.formatting import is_number as is_number
from labconsole.formatting import pct as pct
from labconsole.formatting import pp as pp


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    title: str = ""
    caption: str = ""
    # Rows whose first cell starts a new block (a rule is drawn above them), e.g. metric rows
    # after group rows.
    section_breaks: tuple[int, ...] = ()
    # Cell text that should stand out (differences against a published number, failures).
    emphasis: dict[tuple[int, int], str] = field(default_factory=dict)


@dataclass
class Figure:
    png: bytes
    title: str = ""
    caption: str = ""
    source: str = ""  # the artifact it came from, if any


@dataclass
class Text:
    text: str
    kind: str = "p"  # "p" | "note" | "warning" | "code" | "details-code"
    title: str = ""


Block = Table | Figure | Text


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    anchor: str = ""

    def add(self, block: Block | None) -> None:
        if block is not None:
            self.blocks.append(block)


@dataclass
class Report:
    kind: str  # "run" | "sweep"
    title: str
    path: str
    status: str
    sections: list[Section] = field(default_factory=list)
    main_table: Table | None = None
    data: dict[str, object] = field(default_factory=dict)  # machine-readable facts for report.json


def guarded(title: str, build: Callable[[], Section | list[Section] | None]) -> list[Section]:
    """Run one section builder; a malformed artifact becomes a note, never a crashed report."""
    try:
        built = build()
    except Exception as exc:  # any bad input file must still leave a readable report
        where = traceback.extract_tb(exc.__traceback__)[-1]
        reason = f"{type(exc).__name__}: {exc} (at {where.name}:{where.lineno})"
        return [Section(title, [Text(f"could not render {title}: {reason}", kind="warning")])]
    if built is None:
        return []
    sections = built if isinstance(built, list) else [built]
    return [s for s in sections if s.blocks]


# -- number formats ------------------------------------------------------------------------------


def num(value: object, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return MISSING if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.{digits}g}"
    return short(value)


def short(value: object, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value) if not isinstance(value, (list, dict)) else _compact(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compact(value: object) -> str:
    import json

    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def mean_se_text(stats: MeanSE | None, scale: float = 1.0, digits: int = 1) -> str:
    """'64.0 ± 0.5 (n=5)'; a single seed has no s.e. and says so."""
    if stats is None or stats.mean is None or not is_number(stats.mean):
        return MISSING
    text = f"{stats.mean * scale:.{digits}f}"
    text += f" ± {stats.se * scale:.{digits}f}" if stats.se is not None and is_number(stats.se) else " ± n/a"
    return text + f" (n={stats.n})"
