"""A readout cut after the edited conv, or after the conv it feeds: the edited channels (and
their change carried through the next conv) patched into the kept values give the plain path's
predictions, for every mode, many interventions at once, and repeats."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage1_fixtures import StopAfter, same_state, state_copy, tiny_session

from labconsole.engine.stage1.fast_eval import INPUT
from labconsole.engine.stage1.interventions import Intervention, apply_intervention

SITE = "layer1.0.conv1"  # a residual block's first conv: its input (the shortcut) stays alive


def _plain(session, iv: Intervention) -> torch.Tensor:
    norms = session.norms_after() if iv.where == "post-bn" else {}
    with apply_intervention(session.model, session._by_name, iv, norms):
        return session.evaluator("train").predictions(None)


def _key(session, iv: Intervention) -> str:
    fast = session.fast_evaluator("train")
    norms = session.norms_after() if iv.where == "post-bn" else {}
    return fast._cut_key(iv, norms)


def test_every_mode_at_one_site_in_one_call_equals_the_plain_path() -> None:
    session = tiny_session(batch_size=16)
    saved = state_copy(session.model)
    folded_saved = state_copy(session.folded().graph)
    call = [
        Intervention(((SITE, 1), (SITE, 4)), "zero"),
        Intervention(((SITE, 2),), "zero", where="post-bn"),
        *[Intervention(((SITE, 0), (SITE, 5)), "noise", 0.4, seed) for seed in range(3)],
        Intervention(((SITE, 3),), "reinit", 0.3, 7),
        Intervention(((SITE, 6), ("layer3.0.conv2", 1)), "noise", 0.4, 2),  # a later layer too
    ]
    # All start after the next conv, their change carried through it.
    assert {_key(session, iv) for iv in call} == {"layer1_0_conv1>>"}
    # One that edits the next conv as well starts just after the edited conv.
    both = Intervention(((SITE, 6), ("layer1.0.conv2", 1)), "noise", 0.4, 2)
    assert _key(session, both) == "layer1_0_conv1>"
    call.append(both)
    for iv, pred in zip(call, session.predictions_after("train", call)):
        plain = _plain(session, iv)
        assert torch.equal(pred, plain), iv
    assert same_state(session.model, saved) and same_state(session.folded().graph, folded_saved)


def test_the_interventions_really_change_the_predictions() -> None:
    """Guards the test above: its interventions are not no-ops."""
    session = tiny_session(batch_size=16)
    base = session.evaluator("train").predictions(None)
    strong = Intervention(tuple((SITE, c) for c in range(8)), "noise", 3.0, 0)
    assert not torch.equal(session.predictions_after("train", [strong])[0], base)


def test_where_no_patch_applies_the_cut_stays_before_the_conv() -> None:
    session = tiny_session(batch_size=16)
    # The first conv: noise would need its input, the images, which no cut keeps.
    assert _key(session, Intervention((("conv1", 0),), "noise", 0.5, 1)) == INPUT
    # A conv whose sum and ReLU run with it: its output already holds the shortcut.
    assert _key(session, Intervention((("layer1.0.conv2", 0),), "zero")) == "layer1_0_conv2_1"
    # A conv whose output is another conv's residual summand: a zero needs only its bias, noise
    # would need its input, gone by then.
    zero = Intervention((("layer2.0.conv2", 0),), "zero")
    noise = Intervention((("layer2.0.conv2", 0),), "noise", 0.5, 1)
    assert _key(session, zero).endswith(">") and not _key(session, noise).endswith(">")
    for iv, pred in zip([zero, noise], session.predictions_after("train", [zero, noise])):
        assert torch.equal(pred, _plain(session, iv)), iv


def test_a_zero_on_the_first_conv_is_cut_through_the_next_and_its_output_patched_for_the_shortcut() -> None:
    """The first conv's output feeds the first block's first conv and is its shortcut too: the
    first gets the carried change, the shortcut the output with the edited channels written."""
    session = tiny_session(batch_size=16)
    call = [Intervention((("conv1", c), ("conv1", c + 3)), "zero") for c in range(3)]
    call.append(Intervention((("conv1", 6),), "zero", where="post-bn"))
    assert {_key(session, iv) for iv in call} == {"conv1>>"}
    for iv, pred in zip(call, session.predictions_after("train", call)):
        assert torch.equal(pred, _plain(session, iv)), iv


def test_a_repeat_reads_the_kept_cut_after_the_conv_without_a_pass() -> None:
    session = tiny_session(batch_size=16)
    fast = session.fast_evaluator("train")
    lead = Intervention(((SITE, 1),), "zero")
    first = session.accuracies_after("train", [lead, Intervention(((SITE, 2),), "noise", 0.4, 0)])
    assert {key for key, cut in fast._cuts.items() if cut.nbytes} == {"layer1_0_conv1>>"}
    taps = []
    tap = fast._tap
    fast._tap = lambda keys, x: taps.append(keys) or tap(keys, x)  # type: ignore[method-assign]
    assert session.accuracies_after("train", [lead])[0] == first[0] and taps == []
    # Another intervention at the same conv starts from the same kept values.
    other = Intervention(((SITE, 5),), "reinit", 0.3, 3)
    assert torch.equal(session.predictions_after("train", [other])[0], _plain(session, other)) and taps == []


def test_a_cancelled_walk_through_the_next_conv_keeps_nothing_and_changes_no_weight() -> None:
    from labconsole.engine.context import Cancelled

    session = tiny_session(batch_size=16)
    fast = session.fast_evaluator("train")
    session._baseline("train")
    saved, folded_saved = state_copy(session.model), state_copy(session.folded().graph)
    stop = StopAfter(2)
    seeds = [Intervention(((SITE, 1), (SITE, 3)), "noise", 0.4, seed) for seed in range(3)]
    with pytest.raises(Cancelled):
        fast.predictions(seeds, "rest", session._by_name, {}, stop, stop.count)
    assert stop.chunks == 2 and fast.cached_bytes == 0
    assert same_state(session.model, saved) and same_state(session.folded().graph, folded_saved)


def test_a_cut_kept_for_zeroed_filters_leaves_out_the_input_until_another_edit_needs_it() -> None:
    from labconsole.engine.stage1.channel_patch import DROPPED

    session = tiny_session(batch_size=16)
    fast = session.fast_evaluator("train")
    zero = Intervention(((SITE, 1),), "zero")
    session.accuracies_after("train", [zero])
    cut = fast._cuts["layer1_0_conv1>>"]
    zero_bytes = cut.nbytes
    assert zero_bytes and any(value is DROPPED for value in cut.chunks["rest"][0])
    noise = Intervention(((SITE, 2),), "noise", 0.4, 0)
    assert torch.equal(session.predictions_after("train", [noise])[0], _plain(session, noise))
    assert cut.nbytes > zero_bytes  # kept anew, with the edited conv's input
    assert not any(value is DROPPED for value in cut.chunks["rest"][0])
    assert torch.equal(session.predictions_after("train", [zero])[0], _plain(session, zero))


def test_without_fused_kernels_the_cut_is_after_the_conv_and_equals_the_plain_path() -> None:
    """The graph a GPU session folds (no oneDNN kernels): the ReLU after the edited conv is a
    node of its own, so the cut is just after the conv, its pre-activation output patched."""
    from labconsole.engine.stage1.folding import fold_batchnorm

    session = tiny_session(batch_size=16)
    session._folded, session._folded_tried = fold_batchnorm(session.model, fuse=False), True
    call = [
        Intervention(((SITE, 1), (SITE, 4)), "zero"),
        Intervention(((SITE, 2),), "zero", where="post-bn"),
        Intervention(((SITE, 0), (SITE, 5)), "noise", 0.4, 1),
    ]
    assert {_key(session, iv) for iv in call} == {"layer1_0_conv1>"}
    for iv, pred in zip(call, session.predictions_after("train", call)):
        assert torch.equal(pred, _plain(session, iv)), iv
