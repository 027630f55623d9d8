"""Neuron indexing per layer type, eligible layers by patterns, neuron parsing/validation."""

from __future__ import annotations

import pytest
import torch

from labconsole.engine.models.factory import create_model
from labconsole.engine.stage1.neurons import (
    check_neurons,
    eligible_layers,
    following_norms,
    group_by_layer,
    neuron_slices,
    parse_neurons,
)
from labconsole.errors import UserError


def test_default_eligible_layers_are_convs_without_head() -> None:
    model = create_model("cifar_resnet8", 2, width=8)
    layers = eligible_layers(model)
    names = [layer.name for layer in layers]
    assert "fc" not in names
    assert names[0] == "conv1" and "layer2.0.downsample.0" in names
    assert all(layer.kind == "conv" for layer in layers)
    by_name = {layer.name: layer for layer in layers}
    assert by_name["layer3.0.conv2"].n_neurons == 32  # output channels, width 8 → 4w


def test_linear_neurons_are_output_rows_and_head_can_be_included() -> None:
    model = create_model("mlp_small", 3, in_channels=1, image_size=28)
    layers = eligible_layers(model)
    assert [(layer.name, layer.kind, layer.n_neurons) for layer in layers] == [("body.1", "linear", 256)]
    with_head = eligible_layers(model, include_head=True)
    assert [layer.name for layer in with_head] == ["body.1", "fc"]
    rows = neuron_slices(layers[0].module.weight)
    assert rows.shape == (256, 784)
    assert torch.equal(rows[5], layers[0].module.weight[5])


def test_include_exclude_patterns() -> None:
    model = create_model("cifar_resnet8", 2, width=8)
    names = [layer.name for layer in eligible_layers(model, include=("layer2.*",), exclude=("*downsample*",))]
    assert names == ["layer2.0.conv1", "layer2.0.conv2"]
    with pytest.raises(UserError, match="no eligible layers"):
        eligible_layers(model, include=("nothing.*",))


def test_parse_and_check_neurons() -> None:
    model = create_model("cifar_resnet8", 2, width=8)
    layers = eligible_layers(model)
    refs = parse_neurons("layer1.0.conv1:3, conv1:0,layer1.0.conv1:3")
    assert refs == [("layer1.0.conv1", 3), ("conv1", 0), ("layer1.0.conv1", 3)]
    assert group_by_layer(refs) == {"layer1.0.conv1": [3], "conv1": [0]}
    check_neurons(layers, refs)
    with pytest.raises(UserError, match="unknown layer 'fc'"):
        check_neurons(layers, [("fc", 0)])  # the head is not eligible
    with pytest.raises(UserError, match="out of range"):
        check_neurons(layers, [("conv1", 8)])
    for bad in ("conv1", "conv1:x", ":3", ""):
        with pytest.raises(UserError):
            parse_neurons(bad)


def test_following_norms_finds_each_convs_batchnorm() -> None:
    model = create_model("cifar_resnet8", 2, width=8)
    layers = eligible_layers(model)
    found = following_norms(model, torch.randn(2, 3, 32, 32), layers)
    assert found["conv1"] == "bn1"
    assert found["layer2.0.conv2"] == "layer2.0.bn2"
    assert found["layer2.0.downsample.0"] == "layer2.0.downsample.1"
    assert len(found) == len(layers)
