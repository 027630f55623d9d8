"""What a "neuron" is, per layer type (SPEC §2), and which layers are eligible.

* Conv weight ``[C_out, C_in, kh, kw]``: neuron ``c`` is the output-channel filter ``W[c]``
  (Paper A: "channels in a convolutional kernel").
* Linear weight ``[out, in]``: neuron ``i`` is the output row ``W[i]`` (ViT "individual neurons").

Biases and normalisation layers are not neurons. Eligible layers are chosen by glob patterns on
the module path (``layer2.*``, ``*downsample*``); by default every conv and every Linear except
the classifier head.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from labconsole.errors import UserError

NeuronRef = tuple[str, int]  # (layer name, neuron index)
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class Layer:
    """One eligible layer: module path, kind ("conv" | "linear") and number of neurons."""

    name: str
    kind: str
    n_neurons: int
    module: nn.Module

    def as_tuple(self) -> tuple[str, str, int]:
        return (self.name, self.kind, self.n_neurons)

    @property
    def weight(self) -> torch.Tensor:
        """The layer's weight (``[n_neurons, …]``)."""
        weight = self.module.weight
        assert isinstance(weight, torch.Tensor)
        return weight


def layer_kind(module: nn.Module) -> str | None:
    if isinstance(module, CONV_TYPES):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    return None


def _head_of(model: nn.Module) -> nn.Module | None:
    from labconsole.engine.models.factory import get_head

    try:
        return get_head(model)
    except TypeError:
        return None


def eligible_layers(
    model: nn.Module,
    include: Sequence[str] = ("*",),
    exclude: Sequence[str] = (),
    include_head: bool = False,
) -> list[Layer]:
    """Every conv / Linear whose module path matches one ``include`` pattern and no ``exclude``
    pattern, in definition order. The head is left out unless ``include_head``."""
    head = None if include_head else _head_of(model)
    layers = []
    for name, module in model.named_modules():
        kind = layer_kind(module)
        if kind is None or module is head:
            continue
        if not any(fnmatch.fnmatchcase(name, p) for p in include):
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in exclude):
            continue
        layers.append(Layer(name, kind, int(module.weight.shape[0]), module))
    if not layers:
        raise UserError(
            f"no eligible layers: neurons.include = {list(include)} / neurons.exclude = {list(exclude)} "
            "match no conv or Linear layer of this model"
        )
    return layers


def neuron_slices(weight: torch.Tensor) -> torch.Tensor:
    """The weight viewed as ``[n_neurons, everything else]``: one row per neuron."""
    return weight.reshape(weight.shape[0], -1)


def parse_neurons(text: str) -> list[NeuronRef]:
    """``"layer1.0.conv1:3,fc1:0"`` → ``[("layer1.0.conv1", 3), ("fc1", 0)]``."""
    out: list[NeuronRef] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        layer, sep, index = item.rpartition(":")
        if not sep or not layer or not index.strip().lstrip("-").isdigit():
            raise UserError(f"--neurons {item!r}: expected LAYER:INDEX, e.g. layer1.0.conv1:3")
        out.append((layer.strip(), int(index)))
    if not out:
        raise UserError("--neurons: give at least one LAYER:INDEX")
    return out


def check_neurons(layers: Iterable[Layer], neurons: Sequence[NeuronRef]) -> None:
    """Raise UserError for an unknown layer or an index outside the layer's neurons."""
    by_name = {layer.name: layer for layer in layers}
    if not neurons:
        raise UserError("no neurons given")
    for name, index in neurons:
        layer = by_name.get(name)
        if layer is None:
            known = ", ".join(list(by_name)[:12]) + (", …" if len(by_name) > 12 else "")
            raise UserError(f"unknown layer {name!r} (eligible layers: {known})")
        if not 0 <= int(index) < layer.n_neurons:
            raise UserError(
                f"neuron index {index} is out of range for {name} ({layer.n_neurons} neurons: 0..{layer.n_neurons - 1})"
            )


def group_by_layer(neurons: Sequence[NeuronRef]) -> dict[str, list[int]]:
    """Neuron indices per layer, in first-seen order, duplicates dropped."""
    out: dict[str, list[int]] = {}
    for name, index in neurons:
        bucket = out.setdefault(name, [])
        if int(index) not in bucket:
            bucket.append(int(index))
    return out


def following_norms(model: nn.Module, example: torch.Tensor, layers: Sequence[Layer]) -> dict[str, str]:
    """For each layer, the name of the normalisation module that directly consumes its output
    (a conv's BatchNorm), found by watching one forward pass. Layers without one are absent.

    Needed for post-BN masking: zeroing a conv filter makes the channel output BN's shift
    ``β − γ·μ/σ``, not 0; masking after the BN really silences the channel."""
    norm_types = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.InstanceNorm2d)
    names = {id(layer.module): layer.name for layer in layers}
    # Tensors are kept alive (not only their ids) so a freed id cannot be reused by accident.
    produced: dict[int, tuple[str, torch.Tensor]] = {}
    found: dict[str, str] = {}
    handles = []

    def remember(module: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        if isinstance(out, torch.Tensor):
            produced[id(out)] = (names[id(module)], out)

    def match(norm_name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        def pre(_module: nn.Module, inp: tuple[torch.Tensor, ...]) -> None:
            hit = produced.get(id(inp[0])) if inp else None
            if hit is not None and hit[1] is inp[0] and hit[0] not in found:
                found[hit[0]] = norm_name

        return pre

    try:
        for layer in layers:
            handles.append(layer.module.register_forward_hook(remember))
        for name, module in model.named_modules():
            if isinstance(module, norm_types):
                handles.append(module.register_forward_pre_hook(match(name)))
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(example)
        model.train(was_training)
    finally:
        for handle in handles:
            handle.remove()
    return found
