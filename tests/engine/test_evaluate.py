from __future__ import annotations

import pytest
import torch

from labconsole.engine.data.groups import WATERBIRDS_GROUPS
from labconsole.engine.evaluate import group_correct_counts, split_metrics


def test_named_means_and_wga() -> None:
    # groups sizes 4, 2, 1, 3 ; correct 4, 1, 0, 3
    g = torch.tensor([0, 0, 0, 0, 1, 1, 2, 3, 3, 3])
    y = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    pred = torch.tensor([0, 0, 0, 0, 0, 1, 0, 1, 1, 1])
    correct, total = group_correct_counts(pred, y, g, 4)
    assert correct.tolist() == [4, 1, 0, 3] and total.tolist() == [4, 2, 1, 3]
    m = split_metrics(correct, total, WATERBIRDS_GROUPS, train_proportions=[0.5, 0.25, 0.05, 0.2])
    assert m.groups["landbird-water"] == 0.5
    assert m.wga == 0.0 and m.worst_group == "waterbird-land"
    assert m.mean == pytest.approx(8 / 10)
    assert m.mean_groups == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert m.mean_train_weighted == pytest.approx(0.5 + 0.125 + 0 + 0.2)
    assert m.wga_quantum == 1.0


def test_wga_can_be_a_majority_group_and_empty_groups_are_skipped() -> None:
    m = split_metrics([1, 5, 0, 9], [4, 5, 0, 10], WATERBIRDS_GROUPS)
    assert m.worst_group == "landbird-land" and m.wga == 0.25
    assert m.groups["waterbird-land"] is None
    assert m.wga_quantum == 0.25
    assert m.mean_train_weighted is None
