"""Interventions are exact, scoped and reproducible; the model is restored bit for bit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage1_fixtures import same_state, state_copy, tiny_session

from labconsole.engine.context import Cancelled
from labconsole.engine.stage1.interventions import Intervention, apply_intervention
from labconsole.errors import UserError

NEURONS = (("layer1.0.conv2", 3), ("layer2.0.conv1", 0), ("layer2.0.conv1", 5))


@pytest.fixture(scope="module")
def session():
    return tiny_session()


def weight(session, name: str) -> torch.Tensor:
    return dict(session.model.named_modules())[name].weight


def test_weight_modes_edit_exactly_the_selected_rows(session) -> None:
    saved = state_copy(session.model)
    w = weight(session, "layer2.0.conv1")
    original = w.detach().clone()
    with apply_intervention(session.model, session._by_name, Intervention(NEURONS, "zero")):
        assert torch.count_nonzero(w[0]) == 0 and torch.count_nonzero(w[5]) == 0
        assert torch.equal(w[1], original[1])
    with apply_intervention(session.model, session._by_name, Intervention(NEURONS, "reinit", std=0.02, seed=3)):
        reinit = w.detach().clone()
    with apply_intervention(session.model, session._by_name, Intervention(NEURONS, "noise", std=0.02, seed=3)):
        noisy = w.detach().clone()
    # Same seed and neuron order → the same ε: noise = original + ε, reinit = ε.
    torch.testing.assert_close(noisy[[0, 5]], original[[0, 5]] + reinit[[0, 5]])
    assert 0.01 < float(reinit[[0, 5]].std()) < 0.03
    assert torch.equal(reinit[2], original[2])
    assert same_state(session.model, saved)


@pytest.mark.parametrize("mode", ["zero", "reinit", "noise"])
@pytest.mark.parametrize("where", ["weight", "output", "post-bn"])
def test_model_is_bit_identical_after_any_readout(session, mode: str, where: str) -> None:
    saved = state_copy(session.model)
    session.readout(list(NEURONS), mode=mode, std=0.05, seeds=2, where=where, control_draws=1)
    assert same_state(session.model, saved)
    assert all(len(m._forward_hooks) == 0 for m in session.model.modules())


@pytest.mark.parametrize("where", ["weight", "post-bn"])
def test_model_is_restored_when_a_readout_raises_midway(session, where: str) -> None:
    saved = state_copy(session.model)
    calls = {"n": 0}

    def explode(_module, _inp, _out):
        calls["n"] += 1
        if calls["n"] == 2:  # second batch: the intervention is active
            raise RuntimeError("boom")

    handle = session.model.fc.register_forward_hook(explode)
    evaluator = session.evaluator("train")
    evaluator.batch_size, old = 64, evaluator.batch_size
    evaluator.clear()  # cached cuts were made with the old batch size
    try:
        with pytest.raises(RuntimeError, match="boom"):
            session.accuracy_after("train", Intervention(NEURONS, "noise", std=0.5, seed=1, where=where))
    finally:
        handle.remove()
        evaluator.batch_size = old
        evaluator.clear()
    assert calls["n"] == 2
    assert same_state(session.model, saved)
    assert all(len(m._forward_hooks) == 0 for m in session.model.modules())


def test_model_is_restored_on_cancel() -> None:
    session = tiny_session()
    saved = state_copy(session.model)

    class CancelAfterFirstCheck:
        checks = 0

        def is_set(self) -> bool:
            self.checks += 1
            return self.checks > 1

    session.baseline("train")
    session.cancel = CancelAfterFirstCheck()
    session.evaluator("train").batch_size = 32
    session.evaluator("train").clear()
    with pytest.raises(Cancelled):
        session.accuracy_after("train", Intervention(NEURONS, "reinit", std=0.1, seed=0))
    assert same_state(session.model, saved)


def test_same_seed_same_readout_and_seeds_differ(session) -> None:
    a = session.readout(list(NEURONS), mode="reinit", std=0.5, seeds=3, splits=("train",), control=False)
    b = tiny_session().readout(list(NEURONS), mode="reinit", std=0.5, seeds=3, splits=("train",), control=False)
    assert a.splits == b.splits
    one = session.accuracy_after("train", Intervention(NEURONS, "reinit", std=0.5, seed=0))
    other = [session.accuracy_after("train", Intervention(NEURONS, "reinit", std=0.5, seed=s)) for s in (1, 2, 3)]
    assert any(o != one for o in other)


def test_output_zero_equals_weight_zero_for_bias_free_conv_but_post_bn_differs(session) -> None:
    neurons = (("layer1.0.conv1", 2), ("layer1.0.conv1", 6))
    weight_zero = session.accuracy_after("train", Intervention(neurons, "zero", where="weight"))
    output_zero = session.accuracy_after("train", Intervention(neurons, "zero", where="output"))
    assert weight_zero == output_zero
    # After BN the zeroed channel no longer outputs BN's shift; check on the activations.
    bn = session.model.layer1[0].bn1
    x, _, _ = next(session.cache("train").batches(16))
    seen = {}
    for where in ("weight", "post-bn"):
        with (
            apply_intervention(
                session.model, session._by_name, Intervention(neurons, "zero", where=where), session.norms_after()
            ),
            torch.no_grad(),
        ):
            # Registered after the mask hook, so it sees the masked output.
            handle = bn.register_forward_hook(lambda m, i, o: seen.__setitem__("out", o))
            try:
                session.model(x)
            finally:
                handle.remove()
        seen[where] = seen["out"][:, 2].clone()
    assert float(seen["weight"].abs().max()) > 1e-3  # the BN shift
    assert float(seen["post-bn"].abs().max()) == 0.0


def test_bad_intervention_input_is_a_user_error(session) -> None:
    with pytest.raises(UserError, match="σ"):
        session.readout(list(NEURONS), mode="noise", std=0.0)
    with pytest.raises(UserError, match="σ"):
        Intervention(NEURONS, "reinit", std=-1.0)
    with pytest.raises(UserError, match="unknown intervention mode"):
        session.readout(list(NEURONS), mode="shuffle")
    with pytest.raises(UserError, match="unknown layer"):
        session.readout([("layer9.conv", 0)])
    with pytest.raises(UserError, match="out of range"):
        session.readout([("conv1", 99)])
    with pytest.raises(UserError, match="no split"):
        session.readout(list(NEURONS), splits=("holdout",))
