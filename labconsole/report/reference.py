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
* ``_unit``: the unit of the published values, one string for the table or a table keyed like
  ``_ours``: ``pp`` (``%``, ``percent``) and ``fraction`` are shown in % / pp; ``count``
  (parameters, repetitions) and ``value`` (a norm, a learning rate) as they are, both sides
  unscaled, so the difference is in the cell's own unit. Without it, a summary-path cell follows
  its label (``fraction`` → fractions, ``pp``/``%`` → percent; otherwise values all within ±1
  are fractions) and an artifact cell is a ``value``. A label with ``|change|`` compares magnitudes.
* ``_note``: what differs between their number and ours (dataset, model), shown as the caption.
  A ``[reference]`` with no table and only a ``_note`` says why a preset has no published numbers.

A path ``"<artifact>.json:<path>"`` reads the run's ``artifacts/<artifact>.json`` through its
record (``reference_artifacts``); in a sweep, over the finished runs of the cell's combination.

Our summary numbers are fractions except those whose path has a ``…_pp`` part (already pp); in
a ``count`` or ``value`` cell they are taken as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import JsonValue

from labconsole.engine.records import Combination, MeanSE, Point, RunSummary, parse_metric_path
from labconsole.report.reference_artifacts import artifact_path, resolve_artifact, resolve_artifact_runs

STD_COLUMNS = {"std", "wga_std", "±", "sd", "spread"}
# spelling in a preset → unit; "" (no unit given) keeps the label-based rule for summary paths
UNITS = {"pp": "pp", "%": "pp", "percent": "pp", "fraction": "fraction", "count": "count", "value": "value"}
PERCENT_UNITS = {"", "pp", "fraction"}


@dataclass(frozen=True)
class ReferenceTable:
    label: str
    rows: dict[str, dict[str, float]]
    ours: dict[str, str] = field(default_factory=dict)  # "row/col" | col | row | "*" → path template
    points: dict[str, Point] = field(default_factory=dict)  # row or column → axis values
    backbones: dict[str, str] = field(default_factory=dict)  # row → backbone it is about
    unit: str = ""  # the table's unit ("" = by its label / values)
    units: dict[str, str] = field(default_factory=dict)  # "row/col" | col | row → unit of that cell
    note: str = ""

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

    def cell_unit(self, row: str, col: str) -> str:
        """The cell's unit (``pp``, ``fraction``, ``count``, ``value``; "" = the label-based rule);
        ``ValueError`` naming the table, the cell and the units there are for an unknown one."""
        given = (
            self.units.get(f"{row}/{col}")
            or self.units.get(col)
            or self.units.get(row)
            or self.units.get("*")
            or self.unit
        )
        if not given:
            return "value" if artifact_path(self.path(row, col)) else ""
        unit = UNITS.get(given.strip().lower())
        if unit is None:
            raise ValueError(
                f"reference {self.label!r} {row}/{col}: unknown _unit {given!r} (expected one of {', '.join(UNITS)})"
            )
        return unit

    def in_percent(self, row: str, col: str) -> bool:
        """Is this cell shown in % / pp (else in its own unit)?"""
        return self.cell_unit(row, col) in PERCENT_UNITS

    def paper_shown(self, row: str, col: str, value: float) -> float:
        """The published value in the unit the cell is shown in."""
        unit = self.cell_unit(row, col)
        if unit == "":
            return value * self.scale
        return 100.0 * value if unit == "fraction" else value

    def ours_factor(self, row: str, col: str) -> float:
        """Factor from our stored number to the shown unit: × 100 for a fraction in a % cell."""
        return 1.0 if not self.in_percent(row, col) or is_pp(self.path(row, col)) else 100.0


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
            unit, note = table.get("_unit"), table.get("_note")
            out.append(
                ReferenceTable(
                    label=label,
                    rows=rows,
                    ours=_strings(table.get("_ours")),
                    points=_points(table.get("_points")),
                    backbones=_strings(table.get("_backbone")) if isinstance(table.get("_backbone"), dict) else {},
                    unit=unit if isinstance(unit, str) else "",
                    units=_strings(unit) if isinstance(unit, dict) else {},
                    note=note if isinstance(note, str) else "",
                )
            )
    return out


def no_tables_note(reference: Mapping[str, JsonValue]) -> str:
    """Why a preset has no published numbers: its ``[reference]`` ``_note``, else a plain default."""
    note = reference.get("_note")
    if isinstance(note, str) and note.strip():
        return note.strip()
    return "This preset names no published numbers to compare with (its config has no [reference] table)."


def is_pp(path: str) -> bool:
    return any(part.endswith("_pp") for part in path.replace('"', ".").replace("[", ".").split("."))


def percent_of(path: str, value: float) -> float:
    """Our stored numbers are fractions except Stage I changes, which are already pp."""
    return value if is_pp(path) else 100.0 * value


def aggregate_name(path: str) -> str:
    """A metric path as the dotted name sweeps aggregate it under (``splits.test.wga``)."""
    return ".".join(parse_metric_path(path))


# -- runs ----------------------------------------------------------------------------------------


def resolve_run(
    summary: RunSummary, table: ReferenceTable, row: str, col: str, run_dir: Path | None = None
) -> tuple[float | None, str]:
    """(our value in the cell's shown unit, where it came from) for one reference cell of a
    single run; an artifact cell reads ``run_dir``'s artifact."""
    path = table.path(row, col)
    if not path:
        return None, "no metric path for this cell (the table has no `_ours`)"
    try:
        factor = table.ours_factor(row, col)
        if artifact_path(path):
            if run_dir is None:
                return None, f"{path}: an artifact cell, but no run folder to read it from"
            value, where = resolve_artifact(run_dir, path)
        else:
            value, where = summary.metric(path), path
    except ValueError as exc:
        return None, str(exc)
    if value is None:
        return None, where if where != path else f"{path} not in this run"
    return factor * value, where


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
    combos: list[Combination],
    table: ReferenceTable,
    row: str,
    col: str,
    backbone: str = "",
    sweep_dir: Path | None = None,
) -> tuple[MeanSE | None, str]:
    """(stats in the cell's shown unit with mean/se/std/n, where from) for a reference cell of a
    sweep. A ``std`` column compares the spread over seeds of the cell's metric. An artifact
    cell reads the artifact of every finished run of the combination under ``sweep_dir``."""
    path = table.path(row, col)
    if not path:
        return None, "no metric path for this cell (the table has no `_ours`)"
    combo = combination_for(combos, table, row, col)
    if combo is None:
        return None, "no sweep combination has the axis values this row names"
    try:
        factor = table.ours_factor(row, col)
        if artifact_path(path):
            if sweep_dir is None:
                return None, f"{path}: an artifact cell, but no sweep folder to read it from"
            found, name = resolve_artifact_runs([Path(sweep_dir) / run for run in combo.runs], path)
            if found is None:
                return None, name
            stats = found
        else:
            name = aggregate_name(path)
            aggregated = combo.metrics.get(name)
            if aggregated is None or not aggregated.n:
                return None, f"no {name} in the aggregated numbers"
            stats = aggregated
    except ValueError as exc:
        return None, str(exc)

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
                    shown = table.paper_shown(row, col, value)
                except ValueError:  # an artifact cell or an unknown unit: not this metric's paper value
                    continue
                other = bool(backbone_note(table, row, backbone))
                found.append((int(other), shown, f"{table.label}: {row}/{col}"))
    return [(value, where) for _, value, where in sorted(found, key=lambda item: item[0])]
