from __future__ import annotations

from labconsole.cli.headless import finetune_line, group_table
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
