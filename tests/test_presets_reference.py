"""Every preset's [reference] cells name one of our numbers explicitly: the metric paths parse,
and a sweep's `_points` name its own axes with values it runs."""

from __future__ import annotations

import tomllib

import pytest

from labconsole.engine.records import parse_metric_path
from labconsole.presets import PRESETS_DIR, load_preset
from labconsole.report import reference

PRESETS = sorted(p for p in PRESETS_DIR.glob("*.toml") if "[reference." in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_reference_cells_name_metric_paths_and_sweep_points(path) -> None:
    preset = load_preset(path)
    tables = reference.tables(preset.reference)
    assert tables, f"{path.name}: no reference table parsed"
    axes = preset.sweep.axes
    for table in tables:
        for row, cols in table.rows.items():
            for col in cols:
                cell = table.path(row, col)
                if cell:
                    parse_metric_path(cell)  # raises on a path that cannot be read
        for name, point in table.points.items():
            assert name in table.rows or any(name in cols for cols in table.rows.values()), (path.name, name)
            for key, value in point.items():
                assert key in axes and any(reference.matches({key: v}, {key: value}) for v in axes[key]), (
                    path.name,
                    name,
                    key,
                    value,
                )
    # The resolved preset (config.toml of a run) keeps the reference tables as they are.
    assert tomllib.loads(preset.to_toml())["reference"] == preset.reference


def test_paper_a_stage1_tables_compare_every_cell() -> None:
    for name in ("table3", "table11", "table13", "table14", "fig2", "fig4", "fig5"):
        for table in reference.tables(load_preset(name).reference):
            assert all(table.path(r, c) for r, cols in table.rows.items() for c in cols), (name, table.label)
