"""A run directory written before the schema had a version (``tests/fixtures/run_v0_quickstart``,
a ``--smoke`` quickstart run: ERM, Stage I readouts, fine-tuning) still loads, reports and lists;
a newer version is refused with its number."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labconsole.engine.records import SCHEMA_VERSION, RunFormatError
from labconsole.engine.runs import RunDir

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "run_v0_quickstart"


@pytest.fixture
def v0_run(tmp_path: Path) -> RunDir:
    target = tmp_path / "20261203-083518-quickstart-s0"
    shutil.copytree(FIXTURE, target)
    return RunDir(target)


def test_fixture_is_the_unversioned_layout() -> None:
    for name in ("manifest.json", "summary.json", "artifacts/stage1_readouts.json"):
        assert "schema_version" not in json.loads((FIXTURE / name).read_text())


def test_version_0_run_loads_as_typed_records(v0_run: RunDir) -> None:
    raw = v0_run.summary()
    summary, manifest = v0_run.read_summary(), v0_run.read_manifest()
    assert summary.schema_version == 0 and manifest.schema_version == 0
    assert manifest.stages_done == ["erm", "neurons", "finetune"] and manifest.status == "done"
    assert summary.splits["test"].wga == raw["splits"]["test"]["wga"]
    assert summary.finetune is not None and summary.finetune.wga_after["test"] == raw["finetune"]["wga_after"]["test"]
    assert summary.neurons is not None and len(summary.neurons.rows) == len(raw["neurons"]["rows"])
    # Written back, the file keeps every key it had (plus its version).
    written = summary.to_json()
    assert written.pop("schema_version") == 0 and written == raw


def test_version_0_run_reports_every_section(v0_run: RunDir) -> None:
    from labconsole.report import write_report

    write_report(v0_run.path, ["html", "json"])
    html = (v0_run.path / "report.html").read_text()
    assert "could not" not in html
    for title in ("Per-group accuracy", "Stage I: readouts", "Fine-tuning (Stage II)", "erm: WGA over epochs"):
        assert title in html
    data = json.loads((v0_run.path / "report.json").read_text())
    assert data["summary"]["splits"]["test"]["wga"] == v0_run.summary()["splits"]["test"]["wga"]


def test_a_newer_version_is_refused_by_name(v0_run: RunDir) -> None:
    path = v0_run.path / "summary.json"
    newer = {**json.loads(path.read_text()), "schema_version": SCHEMA_VERSION + 1}
    path.write_text(json.dumps(newer))
    with pytest.raises(RunFormatError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        v0_run.read_summary()
    from labconsole.report import write_report

    write_report(v0_run.path, ["html"])  # the report still renders, and says why it has no numbers
    assert f"schema version {SCHEMA_VERSION + 1} is newer" in (v0_run.path / "report.html").read_text()


def test_reference_tables_without_metric_paths_take_the_shipped_presets(v0_run: RunDir) -> None:
    """A config.toml written before [reference] named metric paths (same label as a shipped
    preset's table) is compared through that preset's paths, and the report says so."""
    from labconsole.report import write_report

    config = v0_run.path / "config.toml"
    text = config.read_text().replace('name = "quickstart"', 'name = "erm-waterbirds"')
    text = text.replace(
        "reference = {}",
        'reference = { "Paper A ERM (ResNet-50, Waterbirds)" = { test = { "landbird-water" = 0.3568, wga = 0.64 } } }',
    )
    config.write_text(text)
    write_report(v0_run.path, ["json"])
    data = json.loads((v0_run.path / "report.json").read_text())
    assert any("predates metric paths" in p and "presets/erm-waterbirds.toml" in p for p in data["problems"])
    table = next(
        b
        for s in data["sections"]
        for b in s["blocks"]
        if b["type"] == "table" and b["title"].startswith("Paper A ERM")
    )
    rows = {r[1]: r for r in table["rows"]}
    test = v0_run.summary()["splits"]["test"]
    assert rows["wga"][3] == f"{100 * test['wga']:.2f}" and rows["wga"][5] == "splits.test.wga"
    assert rows["landbird-water"][3] == f"{100 * test['groups']['landbird-water']:.2f}"
