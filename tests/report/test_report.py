"""Reports: every format written, self-contained HTML, published numbers beside ours, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_fixtures import GROUPS, make_run, read_json, split_metrics, stage1_delta

from labconsole.errors import UserError
from labconsole.report import write_report

READOUT = 'stage1.readouts["gradient@{{col}}/top{k}/zero"].train["{{col}}"].delta_pp'
REFERENCE = {
    "Paper A Table 3: |change| of group train accuracy (pp)": {
        "_ours": {"k=1": READOUT.format(k=1), "k=3": READOUT.format(k=3)},
        "k=1": {g: 1.0 for g in GROUPS},
        "k=3": {g: 2.5 for g in GROUPS},
    },
    "Paper A ERM baseline (accuracy, fraction)": {
        "_ours": {"test/wga": "splits.test.wga", "test": 'splits.test.groups["{col}"]'},
        "test": {"landbird-water": 0.3568, "wga": 0.30},
    },
}


def _cells(html: str) -> list[str]:
    return re.findall(r"<td[^>]*>(.*?)</td>", html)


def test_run_report_writes_every_format_self_contained(tmp_path: Path) -> None:
    run = make_run(tmp_path, reference=REFERENCE)
    written = write_report(run.path)
    assert {p.name for p in written} == {"report.html", "report.md", "report.json", "report.svg"}
    html = (run.path / "report.html").read_text()
    # Self-contained: no external scripts, styles or images.
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html)
    images = re.findall(r'<img [^>]*src="data:image/png;base64,', html)
    # Curves + Stage I bars + tracing heat map (drawn from its table) + an older run's GradCAM PNG
    # (the fake PNG is refused, not embedded).
    assert len(images) == 4
    assert "could not render fake.png: not a PNG file" in html
    assert "could not render broken.json" in html
    assert "landbird-water" in html and "worst-group" in html.lower()
    assert "svg" in (run.path / "report.svg").read_text()[:200]
    report_json = read_json(run.path / "report.json")
    assert report_json["status"] == "done" and report_json["kind"] == "run"
    md = (run.path / "report.md").read_text()
    assert "## Published numbers beside ours" in md
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (run.path / link).exists(), link


def test_published_numbers_sit_beside_ours_with_the_difference(tmp_path: Path) -> None:
    run = make_run(tmp_path, reference=REFERENCE, extras=False)
    write_report(run.path, ["json"])
    tables = [
        b
        for s in read_json(run.path / "report.json")["sections"]
        for b in s["blocks"]
        if b["type"] == "table" and b["title"].startswith("Paper A")
    ]
    table3 = next(t for t in tables if "Table 3" in t["title"])
    rows = {(r[0], r[1]): r for r in table3["rows"]}
    for k in (1, 3):
        for group in GROUPS:
            ours = abs(stage1_delta(group, k, group))  # |change|: magnitudes are compared
            paper = REFERENCE["Paper A Table 3: |change| of group train accuracy (pp)"][f"k={k}"][group]
            row = rows[(f"k={k}", group)]
            assert row[2] == f"{paper:.2f}" and row[3] == f"{ours:.2f}" and row[4] == f"{ours - paper:+.2f}"
    erm = next(t for t in tables if "ERM" in t["title"])
    test = split_metrics([0.95, 0.4, 0.45, 0.93], [16] * 4)
    by_col = {r[1]: r for r in erm["rows"]}
    assert by_col["landbird-water"][2] == "35.68"  # fractions shown as %
    assert by_col["landbird-water"][3] == f"{100 * test['groups']['landbird-water']:.2f}"
    assert by_col["wga"][4] == f"{100 * test['wga'] - 30.0:+.2f}"


def test_incomplete_run_is_marked_not_crashed(tmp_path: Path) -> None:
    run = make_run(tmp_path, done=False, extras=False)
    (run.path / "summary.json").unlink()
    with open(run.path / "metrics.jsonl", "a") as handle:
        handle.write('{"type": "EpochResult", "torn')  # a crash mid-write
    write_report(run.path)
    html = (run.path / "report.html").read_text()
    assert "INCOMPLETE" in html and "status: running" in html
    assert "1 unreadable line" in html
    assert read_json(run.path / "report.json")["status"] == "running"


def test_malformed_summary_sections_become_notes(tmp_path: Path) -> None:
    run = make_run(tmp_path, extras=False)
    summary = read_json(run.path / "summary.json")
    summary["neurons"]["rows"] = [{"label": "odd", "k": "three", "delta_pp": "not a dict"}]
    summary["splits"]["test"] = "garbage"
    summary["weird_stage"] = {"table": [{"a": 1}, {"a": 2, "b": [1, 2, 3]}], "value": 3}
    with pytest.raises(UserError, match="does not fit the schema-version-1 RunSummary"):
        run.write_summary({**summary, "schema_version": 1})  # the engine never writes such a file
    (run.path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (run.path / "artifacts" / "stage1_readouts.json").unlink()
    write_report(run.path)
    html = (run.path / "report.html").read_text()
    # Each misfit part is named (with the file's schema version) and left out; the rest renders.
    assert "could not read summary.json `splits.test` (schema version 0)" in html
    assert "could not read summary.json `neurons.rows` (schema version 0)" in html
    assert "Stage weird_stage: summary" in html and "waterbird-water" in html


@pytest.mark.parametrize(
    "setup,needle",
    [
        (lambda p: p.mkdir(), "is empty"),
        (lambda p: (p.mkdir(), (p / "notes.txt").write_text("hi")), "not a run directory"),
        (lambda p: None, "does not exist"),
    ],
)
def test_bad_directories_raise_user_error(tmp_path: Path, setup, needle: str) -> None:
    target = tmp_path / "target"
    setup(target)
    with pytest.raises(UserError, match=needle):
        write_report(target)


def test_folder_of_runs_points_to_one_of_them(tmp_path: Path) -> None:
    make_run(tmp_path, extras=False)
    with pytest.raises(UserError, match="give one of them"):
        write_report(tmp_path)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labconsole.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )


def test_cli_report_and_compare(tmp_path: Path) -> None:
    a = make_run(tmp_path, "run-a", extras=False, test_wga=0.40)
    b = make_run(tmp_path, "run-b", extras=False, test_wga=0.25)
    result = _cli("report", str(a.path), "--format", "html,json")
    assert result.returncode == 0, result.stderr
    assert (a.path / "report.html").exists() and not (a.path / "report.md").exists()
    bad = _cli("report", str(tmp_path / "nope"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    compare = _cli("runs", "compare", str(a.path), str(b.path))
    assert compare.returncode == 0, compare.stderr
    line = next(row for row in compare.stdout.splitlines() if "test wga" in row)
    assert "40.00" in line and "25.00" in line and "-15.00" in line
    listing = _cli("runs", str(tmp_path))
    assert listing.returncode == 0 and "run-a" in listing.stdout


def test_report_of_a_real_smoke_run(trained_smoke_run) -> None:
    written = write_report(trained_smoke_run.path)
    html = (trained_smoke_run.path / "report.html").read_text()
    assert any(p.name == "report.html" for p in written)
    assert "Per-group accuracy" in html and "erm: WGA over epochs" in html
    assert "could not render" not in html
    data = json.loads((trained_smoke_run.path / "report.json").read_text())
    assert data["summary"]["splits"]["test"]["wga"] == trained_smoke_run.summary()["splits"]["test"]["wga"]


def test_small_values_in_a_pp_table_are_not_taken_for_fractions(tmp_path: Path) -> None:
    reference = {
        "Table 14 (left): change of group train accuracy (pp), zero": {
            "_ours": READOUT.format(k=1),
            "top1": {g: -0.5 for g in GROUPS},
        }
    }
    run = make_run(tmp_path, reference=reference, extras=False)
    write_report(run.path, ["json"])
    table = next(
        b
        for s in read_json(run.path / "report.json")["sections"]
        for b in s["blocks"]
        if b["type"] == "table" and b["title"].startswith("Table 14")
    )
    for row in table["rows"]:
        ours = stage1_delta(row[1], 1, row[1])
        assert row[2] == "-0.50" and row[3] == f"{ours:.2f}" and row[4] == f"{ours + 0.5:+.2f}"
