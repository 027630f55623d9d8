"""Published numbers beside ours.

A preset's ``[reference."<label>"]`` table holds ``row -> {column: value}`` and says, for its
cells, which of our numbers each one is compared with; nothing is guessed from the wording:

* ``_ours``: a metric path (``labconsole.engine.records.RunSummary.metric``), either one string
  for every cell or a table keyed by ``"row/column"``, column or row (first match wins, in that
  order). ``{row}`` and ``{col}`` in a path are replaced by the cell's row and column, e.g.
  ``_ours = 'stage1.readouts["gradient@{col}/top1/zero"].train["{col}"].delta_pp'``.
* ``_points`` (sweeps): which combination of axis values a row (or, in a transposed table, a
  column) is about, e.g. ``_points = { "mse, 0.01 %" = { "finetune.supervised" = "mse",
  "finetune.prune_percent" = 0.01 } }``. A row naming no combination reads the first one (a
  sweep's ERM numbers are shared by its combinations); a sweep of one combination needs none.
* ``_backbone`` (optional): the backbone each row is about (``{ "ViT-S" =
  "vit_small_patch16_224" }``); rows for another backbone than ours say so.
* ``_unit``: ``fraction`` or ``pp`` (``%``). Without it a label saying ``fraction`` holds
  fractions, one saying ``pp``/``%`` percent; otherwise values all within ±1 are fractions.
  Everything is shown in % / pp. A label with ``|change|`` compares magnitudes.

Our numbers are fractions except those whose path has a ``…_pp`` part (already pp).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import JsonValue

from labconsole.engine.records import Combination, MeanSE, Point, RunSummary, parse_metric_path

STD_COLUMNS = {"std", "wga_std", "±", "sd", "spread"}


@dataclass(frozen=True)
class ReferenceTable:
    label: str
    rows: dict[str, dict[str, float]]
    ours: dict[str, str] = field(default_factory=dict)  # "row/col" | col | row | "*" → path template
    points: dict[str, Point] = field(default_factory=dict)  # row or column → axis values
    backbones: dict[str, str] = field(default_factory=dict)  # row → backbone it is about
    unit: str = ""

    @property
    def scale(self) -> float:
        """Factor that brings the table's values to % / pp."""
        unit = self.unit.lower()
        if unit:
            return 100.0 if unit.startswith("frac") else 1.0
        if "fraction" in self.label.lower():
            return 100.0
        if re.search(r"\bpp\b|%|percent", self.label.lower()):
            return 1.0
        return 1.0 if any(abs(v) > 1.0 for cols in self.rows.values() for v in cols.values()) else 100.0

    @property
    def absolute(self) -> bool:
        return "|change|" in self.label or "|Δ|" in self.label

    def path(self, row: str, col: str) -> str:
        """The metric path this cell is compared with ("" when the table names none)."""
        template = self.ours.get(f"{row}/{col}") or self.ours.get(col) or self.ours.get(row) or self.ours.get("*") or ""
        return template.replace("{row}", row).replace("{col}", col)


def _number(value: JsonValue) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _strings(value: JsonValue) -> dict[str, str]:
    if isinstance(value, str):
        return {"*": value}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}
    return {}


def _points(value: JsonValue) -> dict[str, Point]:
    out: dict[str, Point] = {}
    if isinstance(value, dict):
        for name, point in value.items():
            if isinstance(point, dict):
                out[str(name)] = {
                    str(k): v for k, v in point.items() if v is None or isinstance(v, str | int | float | bool)
                }
    return out


def tables(reference: Mapping[str, JsonValue]) -> list[ReferenceTable]:
    """The preset's reference tables; non-numeric cells are dropped."""
    out = []
    for label, table in reference.items():
        if not isinstance(table, dict):
            continue
        rows: dict[str, dict[str, float]] = {}
        for row, cols in table.items():
            if row.startswith("_"):
                continue
            if isinstance(cols, dict):
                values = {str(c): n for c, v in cols.items() if (n := _number(v)) is not None}
            else:
                single = _number(cols)
                values = {"value": single} if single is not None else {}
            if values:
                rows[row] = values
        if rows:
            unit = table.get("_unit")
            out.append(
                ReferenceTable(
                    label=label,
                    rows=rows,
                    ours=_strings(table.get("_ours")),
                    points=_points(table.get("_points")),
                    backbones=_strings(table.get("_backbone")) if isinstance(table.get("_backbone"), dict) else {},
                    unit=unit if isinstance(unit, str) else "",
                )
            )
    return out


def is_pp(path: str) -> bool:
    return any(part.endswith("_pp") for part in path.replace('"', ".").replace("[", ".").split("."))


def percent_of(path: str, value: float) -> float:
    """Our stored numbers are fractions except Stage I changes, which are already pp."""
    return value if is_pp(path) else 100.0 * value


def aggregate_name(path: str) -> str:
    """A metric path as the dotted name sweeps aggregate it under (``splits.test.wga``)."""
    return ".".join(parse_metric_path(path))


# -- runs ----------------------------------------------------------------------------------------


def resolve_run(summary: RunSummary, table: ReferenceTable, row: str, col: str) -> tuple[float | None, str]:
    """(our value in % / pp, where it came from) for one reference cell of a single run."""
    path = table.path(row, col)
    if not path:
        return None, "no metric path for this cell (the table has no `_ours`)"
    try:
        value = summary.metric(path)
    except ValueError as exc:
        return None, str(exc)
    if value is None:
        return None, f"{path} not in this run"
    return percent_of(path, value), path


# -- sweeps --------------------------------------------------------------------------------------


def point_text(point: Point) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()) or "all runs"


def _same(a: JsonValue, b: JsonValue) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
    return a == b


def matches(point: Point, wanted: Point) -> bool:
    """Does the combination ``point`` have every axis value ``wanted`` names?"""
    return all(key in point and _same(point[key], value) for key, value in wanted.items())


def combination_for(combos: list[Combination], table: ReferenceTable, row: str, col: str) -> Combination | None:
    """The combination a cell is about: its row's (or column's) ``_points``, else the first one."""
    wanted = table.points.get(row) or table.points.get(col)
    if wanted is not None:
        return next((c for c in combos if matches(c.point, wanted)), None)
    return combos[0] if combos else None


def backbone_note(table: ReferenceTable, row: str, backbone: str) -> str:
    theirs = table.backbones.get(row)
    return f" (paper backbone {row}; ours {backbone})" if theirs and backbone and theirs != backbone else ""


def resolve_sweep(
    combos: list[Combination], table: ReferenceTable, row: str, col: str, backbone: str = ""
) -> tuple[MeanSE | None, str]:
    """(stats in % with mean/se/std/n, where from) for a reference cell of a sweep. A ``std``
    column compares the spread over seeds of the cell's metric."""
    path = table.path(row, col)
    if not path:
        return None, "no metric path for this cell (the table has no `_ours`)"
    combo = combination_for(combos, table, row, col)
    if combo is None:
        return None, "no sweep combination has the axis values this row names"
    try:
        name = aggregate_name(path)
    except ValueError as exc:
        return None, str(exc)
    stats = combo.metrics.get(name)
    if stats is None or not stats.n:
        return None, f"no {name} in the aggregated numbers"
    factor = 1.0 if is_pp(path) else 100.0

    def scaled(value: float | None) -> float | None:
        return value * factor if value is not None else None

    where = f"{name} of {point_text(combo.point)}" + backbone_note(table, row, backbone)
    if col.strip().lower() in STD_COLUMNS:
        return MeanSE(mean=scaled(stats.std), n=stats.n), f"std over seeds of {where}"
    return MeanSE(mean=scaled(stats.mean), se=scaled(stats.se), std=scaled(stats.std), n=stats.n), where


def paper_cells(ref: Mapping[str, JsonValue], point: Point, metric: str, backbone: str = "") -> list[tuple[float, str]]:
    """Published values (in %) of the cells compared with ``metric`` of this combination,
    the cells about our backbone first."""
    found: list[tuple[int, float, str]] = []
    for table in tables(ref):
        for row, cols in table.rows.items():
            for col, value in cols.items():
                path = table.path(row, col)
                wanted = table.points.get(row) or table.points.get(col)
                if not path or wanted is None or not matches(point, wanted):
                    continue
                try:
                    if aggregate_name(path) != metric:
                        continue
                except ValueError:
                    continue
                other = bool(backbone_note(table, row, backbone))
                found.append((int(other), value * table.scale, f"{table.label}: {row}/{col}"))
    return [(value, where) for _, value, where in sorted(found, key=lambda item: item[0])]
