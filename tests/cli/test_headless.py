from __future__ import annotations

from labconsole.cli.headless import finetune_control_table, finetune_line, group_table
from labconsole.engine.records import RunSummary


def test_finetune_line_reports_before_after_and_gain() -> None:
    summary = {
        "finetune": {
            "wga_before": {"val": 0.5, "test": 0.7},
            "wga_after": {"val": 0.6, "test": 0.55},
            "selection": {"epoch": 2},
        }
    }
    line = finetune_line(RunSummary.model_validate(summary))
    assert line == "fine-tuning (selected epoch 2): val WGA 50.0 → 60.0 (+10.0 pp), test WGA 70.0 → 55.0 (-15.0 pp)"
    assert finetune_line(RunSummary.model_validate({"finetune": {}})) is None and finetune_line(RunSummary()) is None


def test_the_final_output_shows_stage_ii_against_its_control_when_the_run_trained_one() -> None:
    summary = {
        "finetune": {
            "wga_before": {"val": 0.667, "test": 0.6},
            "wga_after": {"val": 0.1, "test": 0.147},
            "control": {"wga_after": {"val": 0.593, "test": 0.627}},
            "method_minus_control": {"val": 0.1 - 0.593, "test": 0.147 - 0.627},
        }
    }
    text = finetune_control_table(RunSummary.model_validate(summary))
    assert text is not None
    rows = {line[:26].strip(): line[26:].split() for line in text.splitlines()[2:]}
    assert rows == {
        "ERM (start)": ["66.7", "60.0"],
        "Stage II recipe": ["10.0", "14.7"],
        "continued ERM (control)": ["59.3", "62.7"],
        "method − control (pp)": ["-49.3", "-48.0"],
    }
    without = RunSummary.model_validate({"finetune": {"wga_before": {"val": 0.5}, "wga_after": {"val": 0.4}}})
    assert finetune_control_table(without) is None and finetune_control_table(RunSummary()) is None


def test_group_table_lists_groups_and_named_metrics() -> None:
    split = {
        "groups": {"a": 1.0, "b": 0.25},
        "group_counts": {"a": 3, "b": 4},
        "wga": 0.25,
        "mean": 0.57,
        "mean_train_weighted": 0.9,
        "mean_groups": 0.625,
        "wga_quantum": 0.25,
    }
    summary = RunSummary.model_validate({"splits": {"test": split}, "selection": {"rule": "best val WGA", "epoch": 3}})
    table = group_table(summary)
    # The report's table: 2 groups, 4 named means, the worst group and the WGA quantum.
    assert table is not None and table.row_count == 8
    assert "epoch 3" in str(table.caption)
    assert group_table(RunSummary()) is None
