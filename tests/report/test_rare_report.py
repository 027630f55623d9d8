"""Rare-lab reports describe what the run did: Paper B sections (table + figure, mean ± s.e.),
Paper B's numbers beside ours, and none of Paper A's per-group/WGA boilerplate."""

from __future__ import annotations

from pathlib import Path

import pytest

from labconsole.engine.api import run_job
from labconsole.presets import PRESETS_DIR, load_preset
from labconsole.report import build_report, write_report
from labconsole.report.doc import Figure, Table, Text

PAPER_A_BOILERPLATE = (
    "No per-group accuracies were recorded",
    "Model selection rule",
    "best val WGA",
    "worst-group accuracy",
    "No dataset check recorded",
    "group counts",
)


def finished_run(tmp_path: Path, preset_name: str, *overrides: str) -> Path:
    preset = load_preset(PRESETS_DIR / "rare" / preset_name, list(overrides), smoke=True)
    return run_job(preset, emit=lambda e: None, runs_root=tmp_path).path


def all_text(report) -> str:
    parts = []
    for section in report.sections:
        parts.append(section.title)
        for block in section.blocks:
            if isinstance(block, Table):
                parts += [block.title, block.caption, *block.columns] + [str(c) for row in block.rows for c in row]
            elif isinstance(block, Text) and block.kind != "details-code":
                parts.append(block.text)
            elif isinstance(block, Figure):
                parts += [block.title, block.caption]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def score_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(
        tmp_path_factory.mktemp("rare-score"),
        "score-vs-n.toml",
        'rare.patterns=["S1", "S3", "R3"]',
        "rare.n_spurious=[0, 3]",
        "rare.num_seeds=2",
        "rare.epochs=1",
    )


def test_theory_report_has_no_paper_a_boilerplate(tmp_path: Path) -> None:
    report = build_report(finished_run(tmp_path, "theory.toml"))
    text = all_text(report)
    for phrase in PAPER_A_BOILERPLATE:
        assert phrase not in text, phrase
    titles = [s.title for s in report.sections]
    assert any(t.startswith("Theory") for t in titles)
    assert "No network is trained" in text and "Monte-Carlo" in text


def test_score_report_tables_figures_and_paper_b_numbers(score_run: Path) -> None:
    report = build_report(score_run)
    text = all_text(report)
    for phrase in PAPER_A_BOILERPLATE:
        assert phrase not in text, phrase
    section = next(s for s in report.sections if s.title.startswith("Spurious score"))
    assert any(isinstance(b, Figure) and b.png.startswith(b"\x89PNG") for b in section.blocks)
    score_table = next(b for b in section.blocks if isinstance(b, Table) and "p (Welch, > n = 0)" in b.columns)
    assert len(score_table.rows) == 3 * 2 and "±" in score_table.rows[1][2]
    # The recipe names the shortened schedule as a departure from Paper B.
    recipe = next(s for s in report.sections if s.title.startswith("What this run did"))
    rows = {r[0]: r for b in recipe.blocks if isinstance(b, Table) for r in b.rows}
    assert rows["epochs"][1:3] == ["70", "1"] and "departure" in rows["epochs"][3]
    # Paper B's Table 1 and Table 2 beside ours.
    published = next(s for s in report.sections if s.title.startswith("Paper B's published numbers"))
    tables = {b.title: b for b in published.blocks if isinstance(b, Table)}
    norms = next(t for title, t in tables.items() if "Table 1" in title)
    s1 = next(r for r in norms.rows if r[0] == "S1")
    assert s1[1] == "1.000" and s1[2] == "1.000"  # one pixel set to 1 on a black corner: norm 1
    params = next(t for title, t in tables.items() if "Table 2" in title)
    assert params.rows[0][1:4] == ["335,114", "335,114", "0"]


def test_symlog_axis_labels_counts_as_integers() -> None:
    from labconsole.report.figures_rare import _axes, count_axis

    _, axes = _axes(1)
    count_axis(axes[0], [0, 1, 3, 100])
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["0", "1", "3", "100"]


def test_written_rare_report_embeds_its_figures(score_run: Path) -> None:
    paths = write_report(score_run, "html,md")
    html = next(p for p in paths if p.suffix == ".html").read_text()
    assert html.count("data:image/png;base64") >= 1
    md = next(p for p in paths if p.suffix == ".md").read_text()
    assert "artifacts/rare_score.json)" not in md  # figures are images, not links to the table
