"""Reference cells that name an artifact (``"rare_score.json:pattern_norm.S1.mean"``) resolve
through the artifact's record, in a single run and over a sweep combination's runs; a missing
artifact or a wrong path says what is wrong; each cell is compared in its own unit."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from labconsole.engine.records import Combination, RunSummary
from labconsole.presets import PRESETS_DIR, load_preset
from labconsole.report import build_report, reference, reference_tables
from labconsole.report.doc import Table, Text
from labconsole.report.reference_artifacts import check_artifact_path

RARE_PRESETS = sorted((PRESETS_DIR / "rare").glob("*.toml"))

NORMS = {
    "Paper B Table 1: empirical pattern norm (MNIST)": {
        "_ours": "rare_score.json:pattern_norm.{row}.mean",
        "_unit": "value",
        "S1": 1.0,
        "R3": 15.19,
    }
}


def score_artifact(norm_s1: float, *, clean_acc: float = 0.9, parameters: int = 335114) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "n_values": [0, 3],
        "per_pattern": {"S1": {"3": {"clean_acc": {"mean": clean_acc, "se": 0.01, "n": 2}}}},
        "pattern_norm": {"S1": {"mean": norm_s1, "se": 0.0, "n": 2}, "S2": {"mean": 3.0, "se": 0.0, "n": 2}},
        "model_parameters": {"mlp": parameters},
        "recipe": {"lr": 0.01, "epochs": 3, "lr_milestones": []},
    }


def write_run(folder: Path, artifact: dict[str, Any] | None, *, summary: dict[str, Any] | None = None) -> Path:
    (folder / "artifacts").mkdir(parents=True)
    if artifact is not None:
        (folder / "artifacts" / "rare_score.json").write_text(json.dumps(artifact), encoding="utf-8")
    (folder / "summary.json").write_text(json.dumps(summary or {"schema_version": 1}), encoding="utf-8")
    (folder / "manifest.json").write_text(json.dumps({"status": "done", "stages": ["rare-score"]}), encoding="utf-8")
    (folder / "done").write_text("now\n", encoding="utf-8")
    return folder


def cells(table: Table) -> dict[str, list[str]]:
    return {row[0]: row for row in table.rows}


# -- a single run ---------------------------------------------------------------------------------


def test_artifact_cell_of_a_run_reads_the_artifact_record(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", score_artifact(1.25))
    (table,) = reference.tables(NORMS)
    ours, where = reference.resolve_run(RunSummary(), table, "S1", "value", run)
    assert ours == pytest.approx(1.25)  # a norm: taken as it is, not × 100
    assert where == "artifacts/rare_score.json:pattern_norm.S1.mean"
    shown = cells(reference_tables.run_tables(NORMS, RunSummary(), run, "Paper B")[0])
    assert shown["S1"][1:4] == ["1.000", "1.250", "+0.250"]


def test_missing_artifact_names_the_file_and_its_stage(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", None)
    (table,) = reference.tables(NORMS)
    ours, where = reference.resolve_run(RunSummary(), table, "S1", "value", run)
    assert ours is None
    assert where == "missing artifacts/rare_score.json (stage rare-score not run?)"


def test_bad_path_names_the_path_and_the_keys_there(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", score_artifact(1.0))
    (table,) = reference.tables(NORMS)
    ours, where = reference.resolve_run(RunSummary(), table, "R3", "value", run)
    assert ours is None
    assert "rare_score.json:pattern_norm.R3.mean" in where
    assert "no 'R3' at pattern_norm" in where and "keys there: S1, S2" in where
    # A path that ends on an object, not a number, lists what the object holds.
    ref = {"t": {"_ours": "rare_score.json:per_pattern.S1", "_unit": "value", "S1": 1.0}}
    (table,) = reference.tables(ref)
    _, where = reference.resolve_run(RunSummary(), table, "S1", "value", run)
    assert "per_pattern.S1 is an object, not a number (keys there: 3)" in where
    # A list is indexed by position: an empty one says it has no such item.
    ref = {"t": {"_ours": 'rare_score.json:recipe.lr_milestones["0"]', "_unit": "count", "first": 40}}
    (table,) = reference.tables(ref)
    _, where = reference.resolve_run(RunSummary(), table, "first", "value", run)
    assert "recipe.lr_milestones is a list of 0" in where


def test_artifact_that_no_longer_fits_its_record_says_so(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {"schema_version": 1, "pattern_norm": {"S1": "one"}})
    (table,) = reference.tables(NORMS)
    ours, where = reference.resolve_run(RunSummary(), table, "S1", "value", run)
    assert ours is None and "RareScoreArtifact" in where and "pattern_norm" in where


# -- units ----------------------------------------------------------------------------------------


def test_units_scale_each_cell_for_its_difference(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", score_artifact(1.0, clean_acc=0.9, parameters=335000))
    ref = {
        "mixed": {
            "_ours": {
                "acc": 'rare_score.json:per_pattern.S1["3"].clean_acc.mean',
                "mlp": "rare_score.json:model_parameters.mlp",
            },
            "_unit": {"acc": "fraction", "mlp": "count"},
            "acc": 0.95,
            "mlp": 335114,
        },
        "percent": {"_ours": 'rare_score.json:per_pattern.S1["3"].clean_acc', "_unit": "pp", "acc": 95.0},
    }
    mixed, percent = reference_tables.run_tables(ref, RunSummary(), run, "paper")
    # A fraction is shown in %, both sides × 100: the difference is −5 pp, not −0.05.
    assert cells(mixed)["acc"][1:4] == ["95.00", "90.00", "-5.00"]
    # A parameter count is never scaled: the difference is in parameters.
    assert cells(mixed)["mlp"][1:4] == ["335,114", "335,000", "-114"]
    # A table in percent compares with our fraction × 100 (a MeanSE compares its mean).
    assert cells(percent)["acc"][1:4] == ["95.00", "90.00", "-5.00"]
    assert "values in % / pp" in mixed.caption and "counts" in mixed.caption


def test_unknown_unit_names_the_table_the_cell_and_the_units(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", score_artifact(1.0))
    ref = {"norms": {"_ours": "rare_score.json:pattern_norm.{row}.mean", "_unit": "percentage", "S1": 1.0}}
    row = reference_tables.run_tables(ref, RunSummary(), run, "paper")[0].rows[0]
    assert "unknown _unit 'percentage'" in row[-1] and "'norms'" in row[-1] and "fraction" in row[-1]


def test_summary_cells_keep_the_label_rule_without_a_unit() -> None:
    ref = {"Table 3: test WGA": {"_ours": "splits.test.wga", "ERM": 0.5}}
    (table,) = reference.tables(ref)
    summary = RunSummary.model_validate({"splits": {"test": {"wga": 0.4}}})
    assert table.paper_shown("ERM", "value", 0.5) == 50.0
    assert reference.resolve_run(summary, table, "ERM", "value") == (pytest.approx(40.0), "splits.test.wga")


# -- a sweep --------------------------------------------------------------------------------------


def write_sweep(root: Path, norms: list[float], reference_tables_: dict[str, Any]) -> Path:
    sweep = root / "sweep"
    points = []
    for seed, norm in enumerate(norms):
        name = f"target_class=0_s{seed}"
        write_run(sweep / name, score_artifact(norm))
        points.append({"point": {"rare.target_class": 0, "seed": seed}, "dir": name})
    index = {
        "schema_version": 1,
        "preset": "rare-score-targets",
        "axes": {"rare.target_class": [0]},
        "seeds": list(range(len(norms))),
        "reference": reference_tables_,
        "points": points,
    }
    (sweep / "sweep.json").write_text(json.dumps(index), encoding="utf-8")
    return sweep


def test_artifact_cell_of_a_sweep_is_the_mean_over_the_combinations_runs(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, [1.0, 1.5], NORMS)
    combos = [Combination(point={"rare.target_class": 0}, runs=["target_class=0_s0", "target_class=0_s1"])]
    (table,) = reference.tables(NORMS)
    stats, where = reference.resolve_sweep(combos, table, "S1", "value", sweep_dir=sweep)
    assert stats is not None and stats.n == 2
    assert stats.mean == pytest.approx(1.25) and stats.se == pytest.approx(0.25)
    assert "over 2 run(s)" in where and "target_class=0" in where
    # Through the sweep report: the published section shows ours beside the paper, in its unit.
    report = build_report(sweep)
    published = next(s for s in report.sections if s.title == "Published numbers beside ours")
    shown = cells(next(b for b in published.blocks if isinstance(b, Table)))
    assert shown["S1"][2:5] == ["1.000", "1.250 ± 0.250 (n=2)", "+0.250"]
    assert "no 'R3' at pattern_norm" in shown["R3"][5] and shown["R3"][3] == "–"


def test_sweep_cell_with_a_missing_artifact_in_every_run_says_so(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, [1.0], NORMS)
    (sweep / "target_class=0_s0" / "artifacts" / "rare_score.json").unlink()
    combos = [Combination(point={"rare.target_class": 0}, runs=["target_class=0_s0"])]
    (table,) = reference.tables(NORMS)
    stats, where = reference.resolve_sweep(combos, table, "S1", "value", sweep_dir=sweep)
    assert stats is None
    assert where == "target_class=0_s0: missing artifacts/rare_score.json (stage rare-score not run?)"


# -- the shipped rare presets -----------------------------------------------------------------------


@pytest.mark.parametrize("path", RARE_PRESETS, ids=lambda p: p.stem)
def test_rare_presets_name_artifact_cells_with_units(path: Path) -> None:
    preset = load_preset(path)
    found = reference.tables(preset.reference)
    if not found:  # no published numbers: the preset says why
        assert "no numbers" in reference.no_tables_note(preset.reference), path.name
        return
    for table in found:
        assert table.unit or table.units, (path.name, table.label, "no _unit")
        for row, cols in table.rows.items():
            for col in cols:
                check_artifact_path(table.path(row, col))  # raises on an unknown file or a bad path
                assert table.cell_unit(row, col) in {"count", "value"}, (path.name, table.label, row)
    assert tomllib.loads(preset.to_toml())["reference"] == preset.reference


def test_preset_without_published_numbers_says_so_instead_of_an_empty_table(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", None)
    theory = load_preset(PRESETS_DIR / "rare" / "theory.toml").reference
    section = reference_tables.run_section(theory, run, "published", "Paper B")
    (block,) = section.blocks
    assert isinstance(block, Text) and "publishes no numbers" in block.text
    (block,) = reference_tables.run_section({}, run, "published").blocks
    assert isinstance(block, Text) and "no published numbers" in block.text
