"""Rankings: per-group gradient scores equal a naive computation; scopes; sample selection."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage1_fixtures import same_state, state_copy, tiny_session

from labconsole.engine.stage1.ranking import percentile_ranks, top_neurons
from labconsole.errors import UserError


@pytest.fixture(scope="module")
def session():
    return tiny_session()


def naive_gradient_norms(session, index: torch.Tensor) -> dict[str, torch.Tensor]:
    """One full-batch backward with .grad, then the L2 norm of each output-channel slice."""
    model = session.model
    cache = session.cache("train")
    x = cache.normalize(cache.images[index])
    model.zero_grad()
    F.cross_entropy(model(x), cache.y[index]).backward()
    out = {}
    for name, module in model.named_modules():
        if name in {layer[0] for layer in session.layers()}:
            out[name] = torch.stack([module.weight.grad[c].norm() for c in range(module.weight.shape[0])])
    model.zero_grad(set_to_none=True)
    return out


def test_gradient_scores_equal_naive_per_layer_computation(session) -> None:
    group = "waterbird-land"
    ours = session.scores("gradient", group)
    index = session.samples_for(group)
    naive = naive_gradient_norms(session, index)
    assert set(ours) == set(naive)
    for name in naive:
        torch.testing.assert_close(ours[name], naive[name], rtol=1e-4, atol=1e-7)


def test_gradient_samples_are_the_worst_of_the_group_then_a_seeded_draw(session) -> None:
    cache = session.cache("train")
    g = session.group_names.index("landbird-land")
    members = torch.nonzero(cache.g == g).flatten()
    with torch.no_grad():
        losses = F.cross_entropy(
            session.model(cache.normalize(cache.images[members])), cache.y[members], reduction="none"
        )
    worst = set(members[torch.topk(losses, 24).indices].tolist())
    picked = session.samples_for("landbird-land")
    assert len(picked) == 12 and set(picked.tolist()) <= worst
    assert bool((cache.g[picked] == g).all())
    again = tiny_session().samples_for("landbird-land")
    assert torch.equal(picked, again)  # same seed → same samples


def test_small_group_uses_all_its_examples() -> None:
    session = tiny_session(worst_samples=256, sampled=128)
    n = session.train_group_counts["waterbird-land"]
    assert n < 128
    assert len(session.samples_for("waterbird-land")) == n


def test_ranking_leaves_model_untouched_and_reports_samples(session) -> None:
    saved = state_copy(session.model)
    ranking = session.ranking("gradient", "landbird-water", k=5)
    assert same_state(session.model, saved)
    assert all(p.grad is None for p in session.model.parameters())
    assert list(ranking.samples_used) == ["landbird-water"]
    scores = [s for _, _, s in ranking.neurons]
    assert scores == sorted(scores, reverse=True) and len(scores) == 5


def test_magnitude_ranking_matches_weight_norms(session) -> None:
    top = session.rank("magnitude", k=3)
    layers = dict(session.model.named_modules())
    for layer, index, score in top:
        assert math.isclose(float(layers[layer].weight[index].detach().norm()), score, rel_tol=1e-5)
    all_norms = sorted(
        (
            float(m.weight[i].detach().norm())
            for name, _, n in session.layers()
            for m in [layers[name]]
            for i in range(n)
        ),
        reverse=True,
    )
    assert [round(s, 5) for _, _, s in top] == [round(v, 5) for v in all_norms[:3]]
    l1 = session.rank("magnitude", k=1, norm="l1")[0]
    assert math.isclose(float(layers[l1[0]].weight[l1[1]].detach().abs().sum()), l1[2], rel_tol=1e-5)


def test_activation_scores_are_mean_absolute_channel_output(session) -> None:
    scores = session.scores("activation", "waterbird-water")
    index = session.samples_for("waterbird-water")
    cache = session.cache("train")
    seen = {}
    handle = session.model.layer2[0].conv1.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    with torch.no_grad():
        session.model(cache.normalize(cache.images[index]))
    handle.remove()
    expected = seen["out"].abs().mean(dim=(0, 2, 3))
    torch.testing.assert_close(scores["layer2.0.conv1"], expected, rtol=1e-4, atol=1e-6)


def test_scopes_per_layer_and_top_percent(session) -> None:
    per_layer = session.rank("magnitude", scope="layer", k=2)
    assert len(per_layer) == 2 * len(session.layers())
    total = sum(n for _, _, n in session.layers())
    assert len(session.rank("magnitude", scope="top-percent", k=10)) == math.ceil(total * 0.1)
    assert len(session.rank("magnitude", scope="top-percent", k=0.01)) == 1


def test_per_layer_normalisation_divides_by_layer_mean(session) -> None:
    raw = session.scores("gradient", "landbird-land")
    top = session.ranking("gradient", "landbird-land", k=1, per_layer_normalise=True).neurons[0]
    layer_scores = raw[top[0]]
    assert math.isclose(top[2], float(layer_scores[top[1]] / layer_scores.mean()), rel_tol=1e-5)


def test_bad_ranking_input_is_a_user_error(session) -> None:
    total = sum(n for _, _, n in session.layers())
    with pytest.raises(UserError, match="larger than the number of eligible neurons"):
        session.rank("magnitude", k=total + 1)
    with pytest.raises(UserError, match="larger than layer"):
        session.rank("magnitude", scope="layer", k=9)  # conv1 has 8 neurons
    with pytest.raises(UserError, match="unknown group"):
        session.rank("gradient", group="penguin-ice")
    with pytest.raises(UserError, match="unknown criterion"):
        session.rank("entropy")
    with pytest.raises(UserError, match="unknown scope"):
        session.rank("magnitude", scope="sideways")
    with pytest.raises(UserError, match="whole number"):
        session.rank("magnitude", k=2.5)


def test_top_neurons_and_percentile_ranks_on_plain_scores() -> None:
    scores = {"a": torch.tensor([1.0, 5.0, 3.0]), "b": torch.tensor([4.0, 2.0])}
    assert top_neurons(scores, "global", 2) == [("a", 1, 5.0), ("b", 0, 4.0)]
    assert top_neurons(scores, "per-layer", 1) == [("a", 1, 5.0), ("b", 0, 4.0)]
    ranks = percentile_ranks(scores, ["a", "b"])
    assert ranks[("a", 1)] == 100.0 and ranks[("a", 0)] == 0.0 and ranks[("a", 2)] == 50.0
