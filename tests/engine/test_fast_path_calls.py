"""The fast path's shared pieces: one row edit for both model copies, which cut stays cached when
room is short, and the (done, total) progress of rankings and readout walks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage1_fixtures import same_state, state_copy, tiny_session

from labconsole.engine.stage1 import folding, interventions
from labconsole.engine.stage1 import session_walk as walk
from labconsole.engine.stage1.call_progress import RateLimited
from labconsole.engine.stage1.interventions import Intervention, edit_weight_rows, restore_weight_rows


@pytest.mark.parametrize("mode", ["zero", "noise", "reinit"])
def test_one_row_edit_serves_both_copies_and_restores_bit_for_bit(mode: str) -> None:
    assert folding.edit_weight_rows is interventions.edit_weight_rows  # no second copy of the edit
    weight = torch.randn(6, 3, 2, 2)
    before = weight.clone()
    iv = Intervention((("conv", 1), ("conv", 4)), mode, std=0.5, seed=3)
    scale = torch.arange(1.0, 7.0)
    with torch.no_grad():
        saved = edit_weight_rows(weight, [1, 4], iv, torch.Generator().manual_seed(3), row_scale=scale)
    eps = torch.randn((2, 3, 2, 2), generator=torch.Generator().manual_seed(3)) * 0.5
    eps = eps * scale[[1, 4]].reshape(-1, 1, 1, 1)
    expected = before.clone()
    if mode == "zero":
        expected[[1, 4]] = 0.0
    elif mode == "reinit":
        expected[[1, 4]] = eps
    else:
        expected[[1, 4]] += eps
    assert torch.equal(weight, expected)  # only rows 1 and 4 change, by the seed's ε
    restore_weight_rows([saved])
    assert torch.equal(weight, before)


def test_the_lead_cut_stays_cached_when_its_controls_cuts_need_the_room() -> None:
    session = tiny_session()
    fast = session.fast_evaluator("train")
    assert fast is not None
    lead = Intervention((("layer3.0.conv1", 0),))  # its cut is smaller than the control's
    control = Intervention((("layer1.0.conv2", 1), ("layer3.0.conv1", 2)))
    sizes = {}
    for iv in (lead, control):
        fast.clear()
        session.accuracies_after("train", [iv])
        sizes[iv] = fast.cached_bytes
    fast.clear()
    assert sizes[control] > sizes[lead]
    fast.budget_bytes = sizes[lead] + 1  # room for the lead's cut only
    first = session.accuracies_after("train", [lead, control])
    assert fast.cached_bytes == sizes[lead]  # the control's (later) cut is streamed, the lead kept
    again = session.accuracies_after("train", [lead])
    assert fast.cached_bytes == sizes[lead] and again[0] == first[0]
    assert again[0] == session.accuracy_after("train", lead)


def test_rate_limited_progress_lets_the_first_and_last_steps_through() -> None:
    now = [0.0]
    seen: list[tuple[int, int]] = []
    report = RateLimited(lambda done, total: seen.append((done, total)), rate=10.0, clock=lambda: now[0])
    for done in range(1, 21):
        now[0] += 0.01  # 100 steps a second
        report(done, 20)
    assert seen[0] == (1, 20) and seen[-1] == (20, 20)
    assert 2 <= len(seen) <= 4  # 0.2 s of steps: about two calls, plus the last
    with pytest.raises(ValueError, match="progress rate"):
        RateLimited(lambda done, total: None, rate=0)


def test_ranking_reports_each_group_it_scores() -> None:
    session = tiny_session()
    seen: list[tuple[int, int]] = []
    session.ranking("gradient", "waterbird-land", k=2, score="specific", progress=lambda d, t: seen.append((d, t)))
    needed = 1 + sum(1 for g, n in session.train_group_counts.items() if n and g != "waterbird-land")
    assert seen[-1] == (needed, needed) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert all(("gradient", g, "l2") in session._scores for g in session.train_group_counts)
    chunks: list[tuple[int, int]] = []
    index = session.samples_for("landbird-land")
    from labconsole.engine.stage1.ranking import gradient_scores

    gradient_scores(
        session.model,
        session._layers,
        session.cache("train"),
        index,
        batch_size=5,
        progress=lambda d, t: chunks.append((d, t)),
    )
    assert chunks[-1] == (len(index), len(index))


def test_a_readout_walk_reports_its_chunks_and_changes_nothing() -> None:
    session = tiny_session(batch_size=16)
    saved = state_copy(session.model)
    seen: list[tuple[int, int]] = []
    neurons = [("layer1.0.conv1", 0), ("layer2.0.conv2", 3)]
    session.readout(neurons, mode="noise", std=0.2, seeds=3, control_draws=2, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] and all(t == seen[0][1] for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert walk._REPORTING.get(session) is None  # nothing reports once the block is left
    assert same_state(session.model, saved)
