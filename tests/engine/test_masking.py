"""The auxiliary model: exactly the requested weights masked, the target's weights and BatchNorm
statistics never modified, gradients shared with the target."""

from __future__ import annotations

import copy

import pytest
import torch

from labconsole.engine.models.factory import create_model
from labconsole.engine.stage1.neurons import eligible_layers
from labconsole.engine.train.masking import AuxiliaryModel, check_percent, neuron_mask, smallest_weights_mask
from labconsole.errors import UserError


def _resnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("cifar_resnet8", 2, width=4)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_neuron_mask_equals_zeroing_exactly_those_slices() -> None:
    model = _resnet().eval()
    layers = eligible_layers(model)
    neurons = [("layer1.0.conv1", 1), ("layer2.0.conv2", 3), ("layer2.0.conv2", 0)]
    mask = neuron_mask(model, layers, neurons)
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for name, index in neurons:
            dict(reference.named_modules())[name].weight[index] = 0
    x = torch.randn(6, 3, 32, 32)
    assert torch.allclose(AuxiliaryModel(model, mask)(x), reference(x), atol=1e-6)
    # Exactly the requested slices are zero in the effective weights, and nothing else.
    for name, keep in mask.keep.items():
        weight = dict(model.named_parameters())[name]
        effective = weight * keep
        zero_rows = {i for i in range(weight.shape[0]) if not effective[i].any()}
        layer = name.removesuffix(".weight")
        assert zero_rows == {i for n, i in neurons if n == layer}
    assert set(mask.keep) == {"layer1.0.conv1.weight", "layer2.0.conv2.weight"}
    assert mask.masked_entries == sum(dict(model.named_parameters())[f"{n}.weight"][0].numel() for n, _ in neurons)


def test_linear_neurons_are_output_rows() -> None:
    model = create_model("mlp_small", 3, in_channels=1, image_size=8).eval()
    layers = eligible_layers(model)
    mask = neuron_mask(model, layers, [("body.1", 5)])
    x = torch.randn(4, 1, 8, 8)
    hidden = {}
    handle = model.body[1].register_forward_hook(lambda _m, _i, out: hidden.setdefault("h", out))
    try:
        AuxiliaryModel(model, mask)(x)
    finally:
        handle.remove()
    # Row 5 masked: that unit outputs its bias alone.
    assert torch.allclose(hidden["h"][:, 5], model.body[1].bias[5].expand(4))


def test_aux_never_modifies_stored_weights_or_running_stats() -> None:
    model = _resnet().train()
    before = _snapshot(model)
    mask = neuron_mask(model, eligible_layers(model), [("conv1", 0), ("layer3.0.conv2", 2)])
    out = AuxiliaryModel(model, mask)(torch.randn(8, 3, 32, 32))
    out.sum().backward()
    after = _snapshot(model)
    assert before.keys() == after.keys()
    for key in before:  # weights, BN running mean/var and counters: bit for bit
        assert torch.equal(before[key], after[key]), key


def test_aux_shares_parameters_masked_entries_get_no_gradient() -> None:
    model = _resnet().train()
    mask = neuron_mask(model, eligible_layers(model), [("conv1", 2)])
    AuxiliaryModel(model, mask)(torch.randn(4, 3, 32, 32)).pow(2).sum().backward()
    grad = model.conv1.weight.grad
    assert grad is not None  # the auxiliary branch trains the target's own parameters
    assert not grad[2].any()
    assert grad[torch.arange(grad.shape[0]) != 2].abs().sum() > 0
    # No parameter was created anywhere: the model still has its original parameter objects only.
    assert all(p.grad is not None for n, p in model.named_parameters() if n.endswith("weight") and "bn" not in n)


def test_target_forward_after_aux_is_unchanged() -> None:
    model = _resnet().eval()
    x = torch.randn(3, 3, 32, 32)
    expected = model(x)
    mask = neuron_mask(model, eligible_layers(model), [("conv1", 0)])
    masked_out = AuxiliaryModel(model, mask)(x)
    assert not torch.allclose(masked_out, expected)
    assert torch.equal(model(x), expected)


def test_smallest_weights_mask_is_global_unstructured_and_exact() -> None:
    model = _resnet()
    layers = eligible_layers(model)
    mask = smallest_weights_mask(layers, 1.0)
    params = dict(model.named_parameters())
    total = sum(layer.module.weight.numel() for layer in layers)
    masked_values, kept_values = [], []
    for layer in layers:
        w = params[f"{layer.name}.weight"].detach().abs()
        keep = mask.keep.get(f"{layer.name}.weight", torch.ones_like(w))
        masked_values.append(w[keep == 0])
        kept_values.append(w[keep == 1])
    masked, kept = torch.cat(masked_values), torch.cat(kept_values)
    assert len(masked) == mask.masked_entries == round(total * 0.01)
    assert masked.max() <= kept.min()  # the smallest |w| over all layers together
    assert mask.kind == "weights" and not mask.neurons


@pytest.mark.parametrize("bad", [0, 100, -1, 150, float("nan")])
def test_percent_outside_its_range_is_refused(bad: float) -> None:
    with pytest.raises(UserError, match=r"finetune\.prune_percent"):
        check_percent(bad)


def test_unknown_layer_or_index_is_refused() -> None:
    model = _resnet()
    layers = eligible_layers(model)
    with pytest.raises(UserError):
        neuron_mask(model, layers, [("nope", 0)])
    with pytest.raises(UserError, match="out of range"):
        neuron_mask(model, layers, [("conv1", 99)])


def test_smallest_weights_mask_counts_as_torch_prune_does() -> None:
    """The authors' code masks with torch.nn.utils.prune.global_unstructured (L1): same count."""
    from torch.nn.utils import prune

    model = _resnet()
    layers = eligible_layers(model)
    total = sum(layer.module.weight.numel() for layer in layers)
    percent = 100 * (7.6 / total)  # 7.6 weights: round → 8, floor → 7
    pruned = _resnet()
    prune.global_unstructured(
        [(dict(pruned.named_modules())[layer.name], "weight") for layer in layers],
        pruning_method=prune.L1Unstructured,
        amount=percent / 100,
    )
    torch_count = sum(int((buf == 0).sum()) for name, buf in pruned.named_buffers() if name.endswith("weight_mask"))
    assert smallest_weights_mask(layers, percent).masked_entries == torch_count == 8
