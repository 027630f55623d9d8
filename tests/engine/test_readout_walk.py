"""One walk per call: every intervention's cut is tapped from one pass of the unmodified model,
only the lead's cut is kept, and the numbers equal the plain path's whatever the cuts."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage1_fixtures import StopAfter, same_state, state_copy, tiny_session

from labconsole.engine.stage1.fast_eval import INPUT
from labconsole.engine.stage1.interventions import Intervention, apply_intervention

# Cuts at the input (conv1), early (layer1), in the middle and at the last stage, in one call.
CALL = [
    Intervention((("conv1", 1),), "zero"),
    Intervention((("layer1.0.conv2", 2), ("layer3.0.conv1", 0)), "zero"),
    Intervention((("layer2.0.conv1", 3),), "noise", 0.3, 4),
    Intervention((("layer3.0.conv2", 5),), "reinit", 0.2, 1),
    Intervention((("layer1.0.conv1", 0),), "zero", where="post-bn"),
]


def _plain(session, iv: Intervention) -> torch.Tensor:
    norms = session.norms_after() if iv.where == "post-bn" else {}
    with apply_intervention(session.model, session._by_name, iv, norms):
        return session.evaluator("train").predictions(None)


def test_one_call_with_cuts_everywhere_equals_the_plain_path_and_changes_nothing() -> None:
    session = tiny_session(batch_size=16)  # several chunks per part
    saved = state_copy(session.model)
    folded = session.folded()
    assert folded is not None
    folded_saved = state_copy(folded.graph)
    fast = session.predictions_after("train", CALL)
    for iv, pred in zip(CALL, fast):
        assert torch.equal(pred, _plain(session, iv)), iv
    assert same_state(session.model, saved) and same_state(folded.graph, folded_saved)


def test_only_the_lead_cut_is_kept_and_a_repeat_reads_it() -> None:
    session = tiny_session(batch_size=16)
    fast = session.fast_evaluator("train")
    assert fast is not None
    lead, control = CALL[1], CALL[2:4]
    first = session.accuracies_after("train", [lead, *control])
    kept = {key for key, cut in fast._cuts.items() if cut.nbytes}
    assert kept == {fast._cut_for(["layer1.0.conv2"])}  # the controls' cuts were used once, not stored
    stored = fast.cached_bytes
    calls = []
    tap = fast._tap
    fast._tap = lambda keys, x: calls.append(keys) or tap(keys, x)  # type: ignore[method-assign]
    again = session.accuracies_after("train", [lead])
    assert again[0] == first[0] and fast.cached_bytes == stored
    assert calls == []  # the repeat ran from the stored cut: no pass before it


def test_a_noise_call_on_the_first_layer_walks_the_images_and_keeps_nothing() -> None:
    """(A zero there is cut through the next conv: ``test_channel_patch``.)"""
    session = tiny_session(batch_size=16)
    fast = session.fast_evaluator("train")
    assert fast is not None
    session.accuracies_after("train", [Intervention((("conv1", 1),), "noise", 0.3, 2)])
    assert fast._cut_for(["conv1"]) == INPUT and fast.cached_bytes == 0


def test_a_cancelled_walk_keeps_no_partial_cut() -> None:
    from labconsole.engine.context import Cancelled

    session = tiny_session(batch_size=16)
    fast = session.fast_evaluator("train")
    assert fast is not None
    session._baseline("train")
    stop = StopAfter(2)
    try:
        fast.predictions([CALL[3]], "rest", session._by_name, {}, stop, stop.count)
    except Cancelled:
        pass
    else:
        raise AssertionError("the walk did not stop at its cancel token")
    assert fast.cached_bytes == 0 and not any(cut.chunks for cut in fast._cuts.values())


def test_a_torchvision_resnet_with_in_place_relus_reads_out_as_its_own_forward_pass() -> None:
    """torchvision's blocks apply ReLU(inplace=True) and ``out += identity``: no intervention's
    rest of the graph may change the activations another one (or a later call) starts from."""
    import torchvision
    from stage1_fixtures import tiny_bundle, with_batchnorm_statistics

    from labconsole.config.neurons import NeuronsConfig
    from labconsole.engine.stage1.session import Session

    torch.manual_seed(0)
    # torchvision's own ResNet code (one BasicBlock a stage keeps the test quick)
    model = with_batchnorm_statistics(
        torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=2)
    )
    session = Session(model, tiny_bundle(), "cpu", config=NeuronsConfig(worst_samples=24, sampled=12, batch_size=16))
    call = [
        Intervention((("layer2.0.downsample.0", 3),), "zero"),  # the cut between conv2 and the residual sum
        Intervention((("layer2.0.conv2", 1), ("layer3.0.conv1", 2)), "noise", 0.5, 1),
        Intervention((("layer1.0.conv1", 0),), "reinit", 0.3, 2),
    ]
    for _ in range(2):  # the second time from the lead's kept cut
        for iv, pred in zip(call, session.predictions_after("train", call)):
            with apply_intervention(session.model, session._by_name, iv), torch.no_grad():
                full = torch.cat([session.model(x).argmax(1) for x, _, _ in session.cache("train").batches(16)])
            assert torch.equal(pred, full), iv
