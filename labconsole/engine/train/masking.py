"""The auxiliary model of Stage II: the target with some weights masked, sharing its parameters.

No copy of the model is made. ``AuxiliaryModel(model, mask)(x)`` runs the *target's* modules
through ``torch.func.functional_call`` with, for each masked weight, ``weight * keep`` in place
of the weight. That product is differentiable, so the auxiliary branch trains the same
parameters as the target branch (masked entries simply receive no gradient from it), and the
stored weights are never written to.

BatchNorm: in training mode the auxiliary branch normalises with its own batch statistics, but
it runs on *copies* of the running-statistics buffers, so the running mean/var used at
evaluation belong to the target alone.

Two kinds of masks:
* ``neuron_mask`` (paper): whole neurons — a conv output-channel filter ``W[c]`` or a Linear
  row ``W[i]`` — chosen as critical by magnitude and/or gradient (SPEC §5).
* ``smallest_weights_mask`` (authors' code, SPEC §7): the p % smallest-magnitude individual
  weights over all eligible layers, global and unstructured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call

from labconsole.config import vocab
from labconsole.engine.stage1.neurons import Layer, NeuronRef, group_by_layer
from labconsole.errors import UserError


@dataclass(frozen=True)
class WeightMask:
    """Which weight entries the auxiliary branch sees as zero.

    ``keep[param_name]`` is a float tensor (1 = kept, 0 = masked) broadcastable to the parameter;
    parameters without an entry are used unchanged."""

    keep: dict[str, torch.Tensor]
    kind: str  # "neurons" | "weights"
    neurons: tuple[NeuronRef, ...] = ()
    masked_entries: int = 0
    total_entries: int = 0
    description: str = ""
    layers: dict[str, int] = field(default_factory=dict)  # layer -> masked neurons / weights

    def summary(self) -> dict[str, object]:
        """Plain values for events and summary.json."""
        return {
            "kind": self.kind,
            "description": self.description,
            "masked_entries": self.masked_entries,
            "total_entries": self.total_entries,
            "layers": dict(self.layers),
            "neurons": [list(n) for n in self.neurons[:64]],
            "n_neurons": len(self.neurons),
        }


def _weight(layer: Layer) -> torch.Tensor:
    """The layer's weight as a tensor (``nn.Module`` attributes are untyped for mypy)."""
    weight = layer.module.weight
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"layer {layer.name} has no weight tensor")
    return weight


def check_percent(percent: float, key: str = "finetune.prune_percent") -> float:
    """The product's one percentage rule (0 < p < 100 for a mask, 0.01 means 0.01 %), named after ``key``."""
    return vocab.check_percent(percent, key=key, all_refused=vocab.MASK_ALL)


def neuron_mask(model: nn.Module, layers: Sequence[Layer], neurons: Sequence[NeuronRef]) -> WeightMask:
    """Mask whole neurons: for each ``(layer, index)`` the slice ``weight[index]`` (all input
    channels and kernel positions of a conv filter, or a full Linear row). Biases and norm
    layers are not touched (SPEC §2: they are not neurons)."""
    by_name = {layer.name: layer for layer in layers}
    params = dict(model.named_parameters())
    keep: dict[str, torch.Tensor] = {}
    per_layer = group_by_layer(neurons)
    counts: dict[str, int] = {}
    masked = 0
    for layer_name, indices in per_layer.items():
        layer = by_name.get(layer_name)
        if layer is None:
            raise UserError(f"cannot mask neurons of {layer_name!r}: not an eligible layer")
        bad = [i for i in indices if not 0 <= i < layer.n_neurons]
        if bad:
            raise UserError(f"neuron index {bad[0]} is out of range for {layer_name} ({layer.n_neurons} neurons)")
        weight = params[f"{layer_name}.weight"]
        vector = torch.ones(weight.shape[0], device=weight.device, dtype=weight.dtype)
        vector[torch.tensor(indices, device=weight.device)] = 0
        keep[f"{layer_name}.weight"] = vector.view(-1, *([1] * (weight.dim() - 1)))
        counts[layer_name] = len(indices)
        masked += len(indices) * weight[0].numel()
    total = sum(_weight(layer).numel() for layer in layers)
    return WeightMask(
        keep=keep,
        kind="neurons",
        neurons=tuple((n, int(i)) for n, i in neurons),
        masked_entries=masked,
        total_entries=total,
        layers=counts,
        description=f"{len(neurons)} neurons in {len(counts)} layers",
    )


@torch.no_grad()
def smallest_weights_mask(layers: Sequence[Layer], percent: float) -> WeightMask:
    """The ``percent`` % individual weights of smallest |w| over all ``layers`` (global,
    unstructured, as ``torch.nn.utils.prune.global_unstructured`` with L1 does)."""
    check_percent(percent)
    flat = torch.cat([_weight(layer).detach().abs().flatten().float() for layer in layers])
    count = vocab.count_of_percent(flat.numel(), percent, rounding="nearest")
    # A stable sort breaks ties by position, so the count is exact and the choice reproducible.
    order = torch.argsort(flat, stable=True)[:count]
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    chosen[order] = True
    keep: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    offset = 0
    for layer in layers:
        weight = _weight(layer)
        part = chosen[offset : offset + weight.numel()].view_as(weight)
        offset += weight.numel()
        if part.any():
            keep[f"{layer.name}.weight"] = (~part).to(weight.dtype)
            counts[layer.name] = int(part.sum())
    return WeightMask(
        keep=keep,
        kind="weights",
        masked_entries=count,
        total_entries=flat.numel(),
        layers=counts,
        description=f"{count} smallest weights ({percent:g} %) in {len(counts)} layers",
    )


def masked_parameters(model: nn.Module, mask: WeightMask) -> dict[str, torch.Tensor]:
    """``{name: weight * keep}`` for every masked parameter: new tensors, differentiable with
    respect to the model's own parameters."""
    params = dict(model.named_parameters())
    missing = [name for name in mask.keep if name not in params]
    if missing:
        raise ValueError(f"mask refers to parameters the model does not have: {missing[:4]}")
    return {name: params[name] * keep for name, keep in mask.keep.items()}


class AuxiliaryModel:
    """Callable view of ``model`` with ``mask`` applied; holds no weights of its own."""

    def __init__(self, model: nn.Module, mask: WeightMask) -> None:
        self.model = model
        self.mask = mask

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        overrides = masked_parameters(self.model, self.mask)
        if self.model.training:
            # Copies of the running statistics: the auxiliary branch must not move the
            # target's BatchNorm buffers (the eval-time model is the target).
            overrides.update({name: buf.clone() for name, buf in self.model.named_buffers()})
        out: torch.Tensor = functional_call(self.model, overrides, (x,), strict=False)
        return out
