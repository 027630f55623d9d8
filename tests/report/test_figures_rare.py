"""The rare-lab figures follow the conventions a reviewer checks: counts on a symlog axis labelled
0, 1, 3 …, fractions on one 0–1 scale with their unit, error bars of one s.e., legends outside
the data, and the reference a panel is read against drawn in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from labconsole.engine.records import (
    RareMembershipArtifact,
    RareMitigationsArtifact,
    RareScoreArtifact,
    RareTheoryArtifact,
)
from labconsole.report import figures_rare
from labconsole.report.doc import Table
from labconsole.report.figures_rare_style import FRACTION_LIMITS
from labconsole.report.html import table_html


def _stat(mean: float, se: float = 0.02) -> dict[str, float | int]:
    return {"mean": mean, "se": se, "n": 3}


SCORE = {
    "epsilon": 0.1,
    "target_class": 0,
    "seeds": [0, 1, 2],
    "n_values": [0, 1, 3, 10],
    "per_pattern": {
        p: {
            str(n): {"score": _stat(0.05 * n), "clean_acc": _stat(0.9), "spurious_acc": _stat(0.9 - 0.02 * n)}
            for n in (0, 1, 3, 10)
        }
        for p in ("S1", "R3")
    },
}
MEMBERSHIP = {
    "pattern": "R3",
    "seeds": [0, 1],
    "per_n": {str(n): {"accuracy": _stat(0.5 + 0.01 * n), "auc": _stat(0.55)} for n in (0, 1, 10)},
}
MITIGATIONS = {
    "pattern": "S3",
    "n": 10,
    "seeds": [0, 1],
    "reference_n0": {"score": _stat(0.04, 0.01), "clean_acc": _stat(0.9), "spurious_acc": _stat(0.88)},
    "methods": {"weight_decay": [{"strength": s, "score": _stat(0.5 - s)} for s in (0.0, 1e-4, 1e-2)]},
}


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The matplotlib figures the builders draw, in order (their PNG is still made)."""
    figures: list[Any] = []
    png = figures_rare._png

    def keep(fig: Any) -> bytes:
        figures.append(fig)
        return png(fig)

    monkeypatch.setattr(figures_rare, "_png", keep)
    return figures


def _legend_clear_of_data(fig: Any) -> None:
    """No legend sits inside an axes: either one legend for the figure, or each below its axes."""
    fig.canvas.draw()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            assert legend.get_window_extent().y1 <= ax.get_window_extent().y0, "legend overlaps the axes"
    assert fig.legends or any(ax.get_legend() for ax in fig.axes)


def test_score_figure_counts_units_fixed_scale_and_legend_outside(drawn: list[Any]) -> None:
    figure = figures_rare.score_figure(RareScoreArtifact.model_validate(SCORE))
    assert figure.png.startswith(b"\x89PNG") and "s.e." in figure.caption
    (fig,) = drawn
    for ax in fig.axes:
        assert ax.get_xscale() == "symlog"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "3", "10"]
        assert "count" in ax.get_xlabel() and "(fraction" in ax.get_ylabel()
        assert ax.get_ylim() == pytest.approx(FRACTION_LIMITS)
    assert fig.legends and not any(ax.get_legend() for ax in fig.axes)
    _legend_clear_of_data(fig)


def test_error_bars_are_one_standard_error(drawn: list[Any]) -> None:
    figures_rare.score_figure(RareScoreArtifact.model_validate(SCORE))
    ax = drawn[0].axes[0]
    bars = ax.containers[0]  # pattern S1's score: mean 0.05 n, s.e. 0.02
    segments = bars.lines[2][0].get_segments()
    assert [round(float(s[1][1] - s[0][1]), 6) for s in segments] == [0.04] * 4


def test_membership_figure_draws_chance_and_keeps_legends_below(drawn: list[Any]) -> None:
    figures_rare.membership_figure(RareMembershipArtifact.model_validate(MEMBERSHIP))
    (fig,) = drawn
    assert any(list(line.get_ydata()) == [0.5, 0.5] for line in fig.axes[0].get_lines()), "no chance line"
    _legend_clear_of_data(fig)


def test_mitigation_figure_draws_the_n0_reference_and_labels_strengths(drawn: list[Any]) -> None:
    (figure,) = figures_rare.mitigation_figures(RareMitigationsArtifact.model_validate(MITIGATIONS))
    assert figure.title == "weight decay" and "n = 0" in figure.caption
    score_ax = drawn[0].axes[0]
    assert any(list(line.get_ydata()) == [0.04, 0.04] for line in score_ax.get_lines())
    assert [t.get_text() for t in score_ax.get_xticklabels()] == ["0", "0.0001", "0.01"]
    _legend_clear_of_data(drawn[0])


def test_theory_figures_label_gamma_and_share_one_legend(drawn: list[Any]) -> None:
    curve = {
        "gamma": [0.0, 0.05, 0.1],
        **{k: [0.0, 0.2, 0.3] for k in ("prediction_difference", "clean_acc", "spurious_acc")},
        **{k: [0.8, 0.7, 0.6] for k in ("authors_clean_acc", "authors_spurious_acc")},
    }
    data = RareTheoryArtifact.model_validate({"gamma_curve": curve, "lam_curves": {"0.1": curve, "1.0": curve}})
    figures = figures_rare.theory_figures(data)
    assert [f.title for f in figures] == ["phase transition in γ (spurious fraction)", "effect of the ridge λ"]
    for fig in drawn:
        assert all("spurious fraction" in ax.get_xlabel() for ax in fig.axes)
        _legend_clear_of_data(fig)


def test_figures_for_refuses_a_table_that_does_not_fit_its_record() -> None:
    with pytest.raises(ValueError, match="per_n"):
        figures_rare.figures_for("rare_deletion.json", {"per_n": {"1": {"before": "?"}}})
    assert figures_rare.figures_for("not_rare.json", {}) == []


def test_html_tables_left_align_word_columns_and_right_align_numbers() -> None:
    html = table_html(Table(["model", "quantity", "exact"], [["spec", "w_inv", "0.497"], ["spec", "bias", "–"]]))
    head = re.findall(r"<th( class=\"text\")?>", html)
    assert head == ["", ' class="text"', ""]  # first column is left-aligned by the style sheet anyway
    assert '<td class="text">w_inv</td>' in html and "<td>0.497</td>" in html


def test_report_reads_no_run_data_through_raw_dict_defaults() -> None:
    report = Path(figures_rare.__file__).parent
    hits = [
        f"{p.name}:{i}"
        for p in sorted(report.glob("*.py"))
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\.get\(.*\) or \{\}", line)
    ]
    assert hits == []


def test_recipe_reads_the_run_config_as_a_typed_preset(tmp_path: Path) -> None:
    import json

    from labconsole.presets import PRESETS_DIR, load_preset
    from labconsole.report.doc import Text
    from labconsole.report.rare_sections import recipe_section

    preset = load_preset(PRESETS_DIR / "rare" / "score-vs-n.toml", ["rare.epochs=2", "rare.weight_decay=0.001"])
    (tmp_path / "manifest.json").write_text(json.dumps({"stages": ["rare-score"], "smoke": True}))
    (tmp_path / "config.toml").write_text(preset.to_toml())
    rows = {r[0]: r for b in recipe_section(tmp_path).blocks if isinstance(b, Table) for r in b.rows}
    assert rows["epochs"][1:] == ["70", "2", "departure from Paper B"]
    assert rows["lr_milestones"][1:3] == ["[40, 50, 60]", "[40, 50, 60]"]
    assert rows["weight_decay"][2] == "0.001" and rows["model"][2] == preset.model.backbone
    (tmp_path / "config.toml").write_text('[rare]\nepochs = "seventy"\n')
    (block,) = recipe_section(tmp_path).blocks
    assert isinstance(block, Text) and block.kind == "warning" and "config.toml" in block.text
