"""The folded, progressive fast path: same numbers as the plain path, honest estimates."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage1_fixtures import same_state, state_copy, tiny_bundle, tiny_model, tiny_session

from labconsole.engine.context import Cancelled
from labconsole.engine.data.cache import TensorCache
from labconsole.engine.records import Readout
from labconsole.engine.stage1 import progressive
from labconsole.engine.stage1.folding import apply_folded, fold_batchnorm
from labconsole.engine.stage1.interventions import Intervention, apply_intervention
from labconsole.engine.stage1.neurons import eligible_layers, following_norms

NEURONS = (("conv1", 1), ("layer1.0.conv2", 3), ("layer2.0.downsample.0", 5), ("layer3.0.conv1", 2))


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize(
    ("mode", "where"), [("zero", "weight"), ("noise", "weight"), ("reinit", "weight"), ("zero", "post-bn")]
)
def test_folded_model_equals_unfolded_under_every_intervention(mode: str, where: str) -> None:
    model = tiny_model()
    saved = state_copy(model)
    folded = fold_batchnorm(model)
    assert folded is not None and folded.scales  # BN really folded
    bundle = tiny_bundle()
    x, _, _ = next(TensorCache.from_split(bundle.split("train"), bundle).batches(40))
    layers = {layer.name: layer for layer in eligible_layers(model)}
    norms = following_norms(model, x[:2], list(layers.values()))
    iv = Intervention(NEURONS, mode, std=0.2, seed=4, where=where)
    assert torch.allclose(_logits(folded.graph, x), _logits(model, x), atol=1e-5)
    with apply_intervention(model, layers, iv, norms):
        plain = _logits(model, x)
    with apply_folded(folded, layers, iv, norms):
        fast = _logits(folded.graph, x)
    assert float((plain - _logits(model, x)).abs().max()) > 1e-3  # the intervention changes the output
    assert torch.allclose(fast, plain, atol=1e-5)
    assert same_state(model, saved)
    # The folded copy is restored too: it computes the unmodified model again.
    assert torch.allclose(_logits(folded.graph, x), _logits(model, x), atol=1e-5)


def test_fast_readout_numbers_equal_the_plain_path() -> None:
    session = tiny_session()
    saved = state_copy(session.model)
    fast = session.readout(list(NEURONS[:2]), mode="noise", std=0.3, seeds=3, control_draws=2)
    plain_splits = {}
    for split in ("train", "test"):
        ivs = [Intervention(NEURONS[:2], "noise", 0.3, s, "weight") for s in range(3)]
        plain_splits[split] = [session.accuracy_after(split, iv) for iv in ivs]
    for split, afters in plain_splits.items():
        for j, name in enumerate(session.group_names):
            values = [a[j] for a in afters if a[j] is not None]
            if values:
                assert fast.splits[split].after[name] == pytest.approx(sum(values) / len(values), abs=1e-12)
    assert fast.first_estimate is not None and fast.first_estimate.splits["train"].ci_pp
    assert same_state(session.model, saved)


def test_batched_control_equals_sequential_control() -> None:
    session = tiny_session()
    picks = [session.random_neurons(3, seed=d) for d in range(4)]
    ivs = [Intervention(tuple(p), "noise", 0.3, d, "weight") for d, p in enumerate(picks)]
    batched = session.accuracies_after("train", ivs)
    sequential = [session.accuracies_after("train", [iv])[0] for iv in ivs]
    assert len(batched) == 4
    for a, b in zip(batched, sequential):
        assert all((x is None and y is None) or abs(x - y) <= 1e-6 for x, y in zip(a, b))


def test_estimate_is_called_first_and_recorded() -> None:
    session = tiny_session()
    seen = []
    result = session.readout(list(NEURONS[:1]), mode="zero", control_draws=2, on_estimate=seen.append)
    assert len(seen) == 1 and isinstance(seen[0], Readout) and seen[0].is_estimate
    assert set(seen[0].splits) == {"train", "test"} and seen[0].control is not None
    train = seen[0].splits["train"]
    assert set(train.ci_pp) == set(session.group_names) and sum(train.sampled.values()) <= sum(train.of.values())
    assert not result.is_estimate and result.first_estimate is not None
    assert result.seconds_to_estimate is not None and result.seconds is not None
    assert result.seconds_to_estimate <= result.seconds
    assert not result.splits["train"].ci_pp  # the returned numbers are the exact ones
    # the exact result keeps its estimate as the file always held it: {"splits", "control"}
    assert set(result.to_json()["estimate"]) == {"splits", "control"}  # type: ignore[arg-type]


def test_weights_bit_identical_after_a_cancelled_fast_readout() -> None:
    session = tiny_session(batch_size=16)
    session.baseline("train")
    session.baseline("test")
    saved = state_copy(session.model)
    folded = session.folded()
    assert folded is not None
    folded_saved = state_copy(folded.graph)

    class CancelLater:
        checks = 0

        def is_set(self) -> bool:
            self.checks += 1
            return self.checks > 3

    session.cancel = CancelLater()
    with pytest.raises(Cancelled):
        session.readout(list(NEURONS), mode="noise", std=0.5, seeds=4)
    assert same_state(session.model, saved) and same_state(folded.graph, folded_saved)
    assert all(len(m._forward_hooks) == 0 for m in folded.graph.modules())
    session.cancel = type("Never", (), {"is_set": lambda self: False})()
    session.readout(list(NEURONS), mode="zero", where="post-bn")
    assert same_state(session.model, saved) and same_state(folded.graph, folded_saved)


def test_stratified_order_takes_small_groups_whole_and_caps_large_ones() -> None:
    g = torch.tensor([0] * 50 + [1] * 7 + [2] * 20)
    order, n = progressive.stratified_order(g, 3, cap=10, seed=0)
    sample = g[order[:n]]
    assert sorted(order.tolist()) == list(range(len(g)))
    assert [int((sample == k).sum()) for k in range(3)] == [10, 7, 10]
    again, _ = progressive.stratified_order(g, 3, cap=10, seed=0)
    assert torch.equal(order, again)


def test_estimate_lies_within_its_interval_in_at_least_95_percent_of_trials() -> None:
    """Coverage of the stated CI over seeded subsamples: per-example outcomes with rare flips
    (where a normal interval fails: a subsample with no flip would claim certainty)."""
    generator = torch.Generator().manual_seed(0)
    sizes = [900, 300, 120, 40]
    g = torch.cat([torch.full((n,), k) for k, n in enumerate(sizes)])
    base = torch.rand(len(g), generator=generator) < 0.8
    flip_rate = torch.tensor([0.01, 0.03, 0.08, 0.2])[g]
    after = base ^ (torch.rand(len(g), generator=generator) < flip_rate)
    names = [f"g{k}" for k in range(4)]
    baseline = [float(base[g == k].float().mean()) for k in range(4)]
    exact = [(float(after[g == k].float().mean()) - baseline[k]) * 100 for k in range(4)]
    hits = total = 0
    for trial in range(300):
        order, n = progressive.stratified_order(g, 4, cap=60, seed=trial)
        picked = order[:n]
        est = progressive.estimate(names, baseline, sizes, g[picked], base[picked], after[picked].unsqueeze(0))
        for k, name in enumerate(names[:3]):  # g3 is sampled whole: exact by construction
            lo, hi = est.ci_pp[name]
            hits += int(lo - 1e-9 <= exact[k] <= hi + 1e-9)
            total += 1
        assert est.ci_pp["g3"][0] == pytest.approx(est.ci_pp["g3"][1])
        assert est.delta_pp["g3"] == pytest.approx(exact[3])
    assert hits / total >= 0.95


def test_early_cuts_never_push_out_a_later_cached_cut() -> None:
    session = tiny_session()
    fast = session.fast_evaluator("train")
    assert fast is not None
    late = Intervention((("layer3.0.conv2", 0),))
    early = Intervention((("layer1.0.conv2", 0),))
    session.accuracies_after("train", [late])
    late_bytes = fast.cached_bytes
    assert late_bytes > 0
    fast.budget_bytes = late_bytes + 1  # room for the late cut only
    first = session.accuracies_after("train", [early])
    assert fast.cached_bytes == late_bytes  # the early cut is streamed, the late one kept
    assert session.accuracies_after("train", [early]) == first
    assert session.accuracies_after("train", [late])[0] == session.accuracy_after("train", late)


def test_run_directory_keeps_the_decoded_dataset(tmp_path: Path) -> None:
    from labconsole.config.data import DataConfig
    from labconsole.engine.stage1 import run_data_cache

    config = DataConfig().smoke()
    bundle = tiny_bundle()
    assert run_data_cache.read_bundle(tmp_path, config) is None
    assert run_data_cache.write_bundle(tmp_path, config, bundle)
    again = run_data_cache.read_bundle(tmp_path, config)
    assert again is not None and again.groups == bundle.groups and again.image_size == bundle.image_size
    for name, split in bundle.splits.items():
        assert split.images is not None and again.splits[name].images is not None
        assert torch.equal(again.splits[name].images, split.images) and torch.equal(again.splits[name].g, split.g)
    other = config.model_copy(update={"image_size": config.image_size + 8})
    assert run_data_cache.read_bundle(tmp_path, other) is None  # another config never reads it
    tensors, _ = run_data_cache.cache_paths(tmp_path, config)
    tensors.write_bytes(b"damaged")
    assert run_data_cache.read_bundle(tmp_path, config) is None


def test_predictions_after_are_in_split_order_and_match_the_plain_path() -> None:
    session = tiny_session()
    ivs = [Intervention(NEURONS[:2], "noise", 0.3, s) for s in range(2)] + [Intervention(NEURONS[1:], "zero")]
    fast = session.predictions_after("train", ivs)
    for iv, pred in zip(ivs, fast):
        with apply_intervention(session.model, session._by_name, iv):
            plain = session.evaluator("train").predictions([n for n, _ in iv.neurons][:1])
        assert torch.equal(pred, plain)


def test_an_estimate_never_leaves_the_range_of_an_accuracy() -> None:
    from labconsole.engine.stage1.progressive import estimate

    # The split's accuracy is 90 %, but half of the 10 sampled examples were wrong at baseline
    # and all of them turn right: baseline + gained − lost would be 140 %.
    base = torch.tensor([False] * 5 + [True] * 5)
    after = torch.ones(1, 10, dtype=torch.bool)
    out = estimate(["g"], [0.9], [100], torch.zeros(10, dtype=torch.long), base, after)
    assert out.after["g"] == 1.0
    assert out.delta_pp["g"] == pytest.approx(10.0)
    interval = out.ci_pp["g"]
    assert interval is not None
    lo, hi = interval
    assert -90.0 <= lo <= hi <= 10.0 + 1e-9
