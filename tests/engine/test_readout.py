"""Fast readouts: the cut path gives the same predictions as a full forward pass; summaries."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage1_fixtures import tiny_bundle, tiny_model, tiny_session

from labconsole.engine.data.cache import TensorCache
from labconsole.engine.records import Readout
from labconsole.engine.stage1.interventions import Intervention, apply_intervention
from labconsole.engine.stage1.neurons import eligible_layers
from labconsole.engine.stage1.readout import SplitEvaluator, group_accuracy, summarise


def full_predictions(model, cache: TensorCache) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x).argmax(1) for x, _, _ in cache.batches(50)])


@pytest.mark.parametrize("layer", ["layer1.0.conv2", "layer2.0.downsample.0", "layer3.0.conv2"])
def test_cut_path_equals_full_forward_under_an_intervention(layer: str) -> None:
    model = tiny_model()
    bundle = tiny_bundle()
    cache = TensorCache.from_split(bundle.split("train"), bundle)
    evaluator = SplitEvaluator(model, cache, batch_size=50)
    assert evaluator.graph is not None
    for mode, seed in (("zero", 0), ("noise", 1), ("reinit", 2)):
        iv = Intervention(((layer, 1), (layer, 4)), mode, std=0.3, seed=seed)
        layers = {found.name: found for found in eligible_layers(model)}
        with apply_intervention(model, layers, iv):
            fast = evaluator.predictions([layer])
            assert evaluator.last_path == "cut"
            slow = full_predictions(model, cache)
        assert torch.equal(fast, slow)
    # The residual branch entering layer2 is kept alive across the cut (downsample reads it).
    assert evaluator.cached_bytes > 0


def test_cut_cache_respects_its_memory_budget() -> None:
    model = tiny_model()
    bundle = tiny_bundle()
    cache = TensorCache.from_split(bundle.split("train"), bundle)
    evaluator = SplitEvaluator(model, cache, batch_size=50, budget_bytes=10_000)
    pred = evaluator.predictions(["layer3.0.conv1"])
    assert evaluator.last_path == "full" and evaluator.cached_bytes == 0
    assert torch.equal(pred, full_predictions(model, cache))


def test_untraceable_model_falls_back_to_full_forward() -> None:
    class Branchy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            h = self.conv(x)
            if h.mean() > 0:  # data-dependent control flow: not traceable
                h = h * 2
            return self.fc(h.mean(dim=(2, 3)))

    bundle = tiny_bundle()
    cache = TensorCache.from_split(bundle.split("test"), bundle)
    evaluator = SplitEvaluator(Branchy().eval(), cache)
    assert evaluator.graph is None
    assert len(evaluator.predictions(["conv"])) == len(cache)
    assert evaluator.last_path == "full"


def test_group_accuracy_and_summary() -> None:
    pred = torch.tensor([1, 0, 1, 1])
    y = torch.tensor([1, 1, 1, 0])
    g = torch.tensor([0, 0, 2, 2])
    acc = group_accuracy(pred, y, g, 4)
    assert acc == [0.5, None, 0.5, None]
    out = summarise(["a", "b", "c", "d"], [1.0, None, 0.5, 0.9], [[0.5, None, 0.5, 0.9], [0.7, None, 0.7, 0.9]])
    assert math.isclose(out["after"]["a"], 0.6) and math.isclose(out["delta_pp"]["a"], -40.0)
    assert math.isclose(out["spread_pp"]["a"], math.sqrt(0.02) * 100)
    assert out["delta_pp"]["b"] is None and out["spread_pp"]["d"] == 0.0


def test_readout_shape_and_control() -> None:
    session = tiny_session()
    neurons = [(layer, i) for layer, i, _ in session.rank("gradient", group="waterbird-land", k=2)]
    result = session.readout(neurons, mode="noise", std=0.1, seeds=3, control_draws=2)
    assert isinstance(result, Readout)
    assert set(result.splits) == {"train", "test"} and result.seeds == 3
    assert result.control is not None
    for split in ("train", "test"):
        table = result.splits[split]
        assert set(table.to_json()) == {"baseline", "after", "delta_pp", "spread_pp"}  # no estimate fields
        assert list(table.baseline) == list(session.group_names)
        for group in session.group_names:
            after, base = table.after[group], table.baseline[group]
            assert after is not None and base is not None
            assert math.isclose(table.delta_pp[group] or 0.0, (after - base) * 100)
        assert set(result.control[split].to_json()) == {"baseline", "after", "delta_pp", "spread_pp"}
    assert len(result.control_neurons) == 2 and all(len(d) == 2 for d in result.control_neurons)
    assert result.wga_quantum_pp["train"] == pytest.approx(100 / min(session.train_group_counts.values()))
    zero = session.readout(neurons, mode="zero", seeds=10, control=False)
    assert zero.seeds == 1 and zero.control is None
    assert all(v == 0.0 for v in zero.splits["train"].spread_pp.values())
    # the record is what the file holds: written and read back, it is the same record
    assert Readout.model_validate(json.loads(json.dumps(result.to_json()))) == result
