"""Stage I evidence: layer-matched control draws, empirical and paired p-values on cases with a
known answer, the memorization signature, and the flipped examples."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from labconsole.engine.records import MeasuredEvidence
from labconsole.engine.stage1.call_progress import RateLimited
from labconsole.engine.stage1.evidence import (
    anywhere_draws,
    evidence_readout,
    format_evidence,
    layer_histogram,
    matched_draws,
)
from labconsole.engine.stage1.evidence_stats import empirical_p, paired_over_seeds, signature, verdict_line
from labconsole.errors import UserError
from tests.engine.stage1_fixtures import same_state, state_copy, tiny_session

SIZES = {"conv1": 16, "layer1.0.conv1": 16, "layer2.0.conv1": 32, "fc": 2}


def test_matched_draws_have_the_critical_sets_layer_histogram() -> None:
    critical = [("conv1", 1), ("layer2.0.conv1", 8), ("layer2.0.conv1", 24)]
    draws = matched_draws(critical, SIZES, draws=50, seed=3)
    assert len(draws) == 50
    for draw in draws:
        assert layer_histogram(draw) == {"conv1": 1, "layer2.0.conv1": 2}
        assert len(set(draw)) == len(draw)  # distinct neurons
        assert not set(draw) & set(critical)  # the critical neurons are not their own control
        assert all(0 <= i < SIZES[layer] for layer, i in draw)
    assert len({tuple(d) for d in draws}) > 40  # really random, not one draw repeated
    assert matched_draws(critical, SIZES, 5, seed=3) == draws[:5]  # seeded


def test_a_full_layer_is_drawn_whole_and_too_many_is_refused() -> None:
    full = [("fc", 0), ("fc", 1)]
    assert all(sorted(d) == full for d in matched_draws(full, SIZES, 3, seed=0))
    with pytest.raises(UserError, match="fc"):
        matched_draws(full, {**SIZES, "fc": 1}, 1, seed=0)


def test_anywhere_draws_can_leave_the_critical_layers() -> None:
    layers = {layer for d in anywhere_draws(SIZES, 3, 40, seed=1) for layer, _ in d}
    assert layers == set(SIZES)


def test_empirical_p_known_answers() -> None:
    # 1 of 4 draws at least as low as −10 → (1 + 1) / (4 + 1)
    assert empirical_p(-10.0, [-20.0, -5.0, -5.0, 0.0]) == pytest.approx(0.4)
    assert empirical_p(-30.0, [-1.0] * 19) == pytest.approx(1 / 20)  # the floor with 19 draws
    assert empirical_p(0.0, [0.0, 0.0, 1.0]) == pytest.approx(3 / 4)  # ties count as "at least as low"
    assert empirical_p(1.0, []) is None


def test_paired_test_matches_the_closed_form_t_distribution() -> None:
    # differences −1, −2, −3: mean −2, sd 1, s.e. 1/√3, t = −2√3 with 2 degrees of freedom;
    # for ν = 2 the t CDF is ½ + t / (2√(2 + t²)).
    out = paired_over_seeds([-11.0, -12.0, -13.0], [-10.0, -10.0, -10.0])
    t = -2 * math.sqrt(3)
    assert out["n"] == 3 and out["mean_pp"] == pytest.approx(-2.0)
    assert out["se_pp"] == pytest.approx(1 / math.sqrt(3))
    assert out["t"] == pytest.approx(t)
    assert out["p_one_sided"] == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)))
    assert paired_over_seeds([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])["p_one_sided"] > 0.9


def test_signature_verdict_follows_the_numbers() -> None:
    groups = ["minority", "majority"]
    critical = {"train": {"minority": -30.0, "majority": -1.0}, "test": {"minority": 0.0, "majority": -1.0}}
    draws = {
        "train": {"minority": [-1.0 * (i % 3) for i in range(20)], "majority": [-1.0] * 20},
        "test": {"minority": [0.0] * 20, "majority": [-1.0] * 20},
    }
    sig = signature(critical, draws, groups)
    assert sig is not None
    assert sig.critical_pp == {"minority": -30.0, "majority": 0.0}
    assert sig.p["minority"] == pytest.approx(1 / 21)  # 20 draws: the smallest p they can give
    assert sig.verdict == {"minority": "seen", "majority": "not seen"}
    line = verdict_line(sig, groups)
    assert line is not None and "seen for minority (-30.0 pp, p = 0.048)" in line
    assert "not seen for majority" in line and "20 control draws" in line
    assert signature({"test": critical["test"]}, draws, groups) is None  # needs both splits
    # The same numbers with 19 draws cannot reach p < 0.05: the verdict says so.
    short = {s: {g: v[:19] for g, v in per.items()} for s, per in draws.items()}
    assert signature(critical, short, groups).verdict["minority"] == "not seen"  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def readout():  # type: ignore[no-untyped-def]
    session = tiny_session()
    saved = state_copy(session.model)
    top = session.rank("gradient", group=0, k=3)
    neurons = [(layer, index) for layer, index, _ in top]
    found = evidence_readout(session, neurons, draws=6, seed=5)
    return session, neurons, found, saved


def test_evidence_readout_records_a_consistent_control_p_and_flips(readout) -> None:  # type: ignore[no-untyped-def]
    session, neurons, found, saved = readout
    assert same_state(session.model, saved)  # every edit was reverted
    assert found.kind == "layer-matched" and found.draws == 6
    for draw in found.control_neurons:
        assert layer_histogram([(layer, index) for layer, index in draw]) == layer_histogram(neurons)
    for split in ("train", "test"):
        cache = session.cache(split)
        for j, group in enumerate(session.group_names):
            n = int((cache.g == j).sum())
            flip = found.flips[split][group]
            assert flip.n == n
            # Δ of a zeroing readout is exactly (became right − became wrong) / n.
            expected = 100.0 * (flip.n_to_right - flip.n_to_wrong) / n
            assert found.critical[split][group] == pytest.approx(expected)
            assert len(flip.to_wrong) == len(flip.to_wrong_loss) == min(flip.n_to_wrong, 500)
            draws = found.draws_pp[split][group]
            assert len(draws) == 6
            assert found.p[split][group] == pytest.approx(
                (1 + sum(d <= found.critical[split][group] + 1e-12 for d in draws)) / 7
            )
            assert found.control[split].delta_pp[group] == pytest.approx(sum(draws) / 6)
    sig = found.signature
    g = session.group_names[0]
    assert sig.critical_pp[g] == pytest.approx(found.critical["train"][g] - found.critical["test"][g])


def test_flipped_examples_carry_the_unmodified_models_loss(readout) -> None:  # type: ignore[no-untyped-def]
    import torch.nn.functional as F

    session, _, found, _ = readout
    cache = session.cache("train")
    checked = 0
    for flip in found.flips["train"].values():
        for direction in ("to_wrong", "to_right"):
            for position, loss in zip(getattr(flip, direction)[:3], getattr(flip, f"{direction}_loss")[:3]):
                x, y, _ = next(cache.batches(1, torch.tensor([position])))
                with torch.no_grad():
                    assert float(F.cross_entropy(session.model(x), y)) == pytest.approx(loss, abs=1e-4)
                checked += 1
    assert checked > 0, "zeroing the top-3 gradient neurons flipped no training example"


def test_evidence_table_renders_control_p_and_the_verdict(readout) -> None:  # type: ignore[no-untyped-def]
    from labconsole.engine.records import Readout
    from labconsole.engine.stage1.evidence import with_evidence

    session, _, found, _ = readout
    row = with_evidence(Readout(label="gradient top-3"), found, "layer-matched")
    assert row.evidence is not None and row.control is not None and len(row.control_neurons) == found.draws
    text = format_evidence([row], list(session.group_names))
    assert "gradient top-3" in text and "tr − te" in text and "memorization signature" in text
    assert "p=" in text


# -- group-specific ranking and the BN mode of gradients --------------------------------------------


def test_specificity_removes_layer_scale_and_finds_the_group_specific_neuron() -> None:
    from labconsole.engine.stage1.ranking import specificity_scores, top_neurons

    group = {"early": torch.tensor([100.0, 100.0, 100.0, 300.0]), "late": torch.tensor([1.0, 1.0, 5.0, 1.0])}
    other = {"early": torch.tensor([100.0, 100.0, 100.0, 300.0]), "late": torch.tensor([1.0, 1.0, 1.0, 1.0])}
    assert top_neurons(group, "global", 1)[0][:2] == ("early", 3)  # the paper score: layer scale wins
    specific = specificity_scores(group, [other])
    assert top_neurons(specific, "global", 1)[0][:2] == ("late", 2)
    assert float(specific["early"][3]) == pytest.approx(1.0, rel=1e-2)  # as high for every group ≈ 1


def test_session_records_the_score_it_ranked_with() -> None:
    session = tiny_session()
    paper = session.ranking("gradient", 0, "global", 5)
    specific = session.ranking("gradient", 0, "global", 5, score="specific")
    assert paper.score == "paper" and specific.score == "specific"
    assert specific.to_dict()["score"] == "specific"
    assert [n[:2] for n in paper.neurons] != [n[:2] for n in specific.neurons]
    with pytest.raises(UserError, match="specificity"):
        session.ranking("magnitude", None, "global", 5, score="specific")


def test_gradient_bn_train_uses_batch_statistics_and_restores_the_running_ones() -> None:
    eval_session, train_session = tiny_session(), tiny_session(gradient_bn="train")
    saved = state_copy(train_session.model)
    a, b = eval_session.scores("gradient", 0), train_session.scores("gradient", 0)
    assert same_state(train_session.model, saved)
    assert not train_session.model.training
    assert any(not torch.allclose(a[name], b[name]) for name in a)


# -- the layer-matched control in one walk, with partial results ------------------------------------


@pytest.fixture(scope="module")
def critical_set():  # type: ignore[no-untyped-def]
    session = tiny_session()
    top = session.rank("gradient", group=0, k=3)
    return [(layer, index) for layer, index, _ in top]


def test_one_walk_over_the_draws_gives_the_numbers_of_the_two_calls_it_replaces(critical_set) -> None:  # type: ignore[no-untyped-def]
    """The console used to ask for the first 3 draws, then for all 20; one call now walks the 20
    draws once and sends the first 3's result on the way: the same draws, the same numbers."""
    kwargs: dict[str, Any] = {"mode": "noise", "std": 0.05, "seeds": 2, "seed": 5}
    first_three = evidence_readout(tiny_session(), critical_set, draws=3, **kwargs)
    all_twenty = evidence_readout(tiny_session(), critical_set, draws=20, **kwargs)
    partials: list[MeasuredEvidence] = []
    session = tiny_session()
    saved = state_copy(session.model)
    found = evidence_readout(session, critical_set, draws=20, first_draws=3, on_partial=partials.append, **kwargs)
    assert partials and partials[0] == first_three
    assert found == all_twenty
    assert found.control_neurons[:3] == first_three.control_neurons
    assert same_state(session.model, saved)


def test_partial_results_arrive_with_more_draws_each_time(critical_set, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import labconsole.engine.stage1.evidence as evidence

    monkeypatch.setattr(evidence, "PARTIAL_RATE", 1e9)  # no rate limit: every batch sends its result
    partials: list[MeasuredEvidence] = []
    counts: list[tuple[int, int]] = []
    found = evidence_readout(
        tiny_session(),
        critical_set,
        draws=8,
        first_draws=3,
        seed=5,
        on_partial=partials.append,
        # Unlimited, as the partials are: the engine's ≤ 10/s limit would drop a fast batch's count.
        progress=RateLimited(lambda done, total: counts.append((done, total)), rate=1e9),
    )
    assert [p.draws for p in partials] == [3, 6]  # the batches 3, 3, 2; the last is the result
    assert counts == [(0, 8), (3, 8), (6, 8), (8, 8)]
    for part in partials:
        k = part.draws
        assert part.control_neurons == found.control_neurons[:k]
        for split in ("train", "test"):
            assert part.critical[split] == found.critical[split]
            for group, values in part.draws_pp[split].items():
                assert values == found.draws_pp[split][group][:k]
                critical = part.critical[split][group]
                assert part.p[split][group] == empirical_p(critical, values)


def test_partial_results_are_rate_limited_after_the_first(critical_set, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import labconsole.engine.stage1.evidence as evidence

    monkeypatch.setattr(evidence, "PARTIAL_RATE", 1e-6)  # one a week: only the first gets through
    partials: list[MeasuredEvidence] = []
    evidence_readout(tiny_session(), critical_set, draws=8, first_draws=2, seed=5, on_partial=partials.append)
    assert [p.draws for p in partials] == [2]


def test_a_cancelled_matched_control_stops_after_the_batch_it_is_in(critical_set) -> None:  # type: ignore[no-untyped-def]
    from labconsole.engine.context import Cancelled

    class CancelAfterTheFirstDraws:
        cancelled = False

        def is_set(self) -> bool:
            return self.cancelled

    session = tiny_session()
    saved = state_copy(session.model)
    token = CancelAfterTheFirstDraws()
    session.cancel = token
    partials: list[int] = []

    def first_draws_in(part: MeasuredEvidence) -> None:
        partials.append(part.draws)
        token.cancelled = True  # Esc while the first draws are shown

    with pytest.raises(Cancelled):
        evidence_readout(session, critical_set, draws=20, first_draws=3, seed=5, on_partial=first_draws_in)
    assert partials == [3]
    assert same_state(session.model, saved)  # every edit reverted
