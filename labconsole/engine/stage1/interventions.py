"""Interventions on selected neurons as scoped, always-reverted edits (SPEC §4).

Modes: ``zero`` (θ_n ← 0), ``reinit`` (θ_n ← ε), ``noise`` (θ_n ← θ_n + ε), ε ~ N(0, σ²I).
Where:
* ``weight`` (default, Paper A): edit the neuron's weight slice; bias and norm layers untouched.
  After a conv followed by BatchNorm a zeroed filter makes the channel output BN's shift, not 0.
* ``output``: act on the layer's output channel (activation) instead of its weights.
* ``post-bn``: act on the channel *after* the BatchNorm that follows the conv (falls back to the
  layer's output where no norm follows), which really silences a zeroed channel.

``apply_intervention`` is a context manager: the original weight slices are copied before the
edit and copied back in ``finally``, and hooks are removed there too, so the model is bit-for-bit
unchanged afterwards even when the readout inside raises or is cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from labconsole.config.vocab import DEFAULT_SIGMA, MODES, WHERES, check_sigma
from labconsole.engine.stage1.neurons import Layer, NeuronRef, check_neurons, group_by_layer
from labconsole.errors import UserError


@dataclass(frozen=True)
class Intervention:
    neurons: tuple[NeuronRef, ...]
    mode: str = "zero"
    std: float = DEFAULT_SIGMA
    seed: int = 0
    where: str = "weight"

    def __post_init__(self) -> None:
        check_mode(self.mode, self.std)
        if self.where not in WHERES:
            raise UserError(f"unknown intervention target {self.where!r} (expected one of {', '.join(WHERES)})")


def check_mode(mode: str, std: float) -> None:
    if mode not in MODES:
        raise UserError(f"unknown intervention mode {mode!r} (expected one of {', '.join(MODES)})")
    if mode != "zero":
        check_sigma(std, key=f"σ of the {mode} mode")


def hook_targets(
    intervention: Intervention, layers: Mapping[str, Layer], norms_after: Mapping[str, str]
) -> dict[str, str]:
    """Layer name → name of the module whose output is edited (output / post-bn modes)."""
    if intervention.where == "output":
        return {name: name for name in group_by_layer(intervention.neurons)}
    return {name: norms_after.get(name, name) for name in group_by_layer(intervention.neurons)}


def touched_modules(
    intervention: Intervention, layers: Mapping[str, Layer], norms_after: Mapping[str, str]
) -> list[str]:
    """Names of the modules whose computation changes (where a readout must start recomputing)."""
    if intervention.where == "weight":
        return list(group_by_layer(intervention.neurons))
    return list(hook_targets(intervention, layers, norms_after).values())


@contextmanager
def apply_intervention(
    model: nn.Module,
    layers: Mapping[str, Layer],
    intervention: Intervention,
    norms_after: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Apply ``intervention`` inside the ``with`` block; restore exactly on the way out."""
    check_neurons(layers.values(), intervention.neurons)
    per_layer = group_by_layer(intervention.neurons)
    if intervention.where == "weight":
        with _edit_weights(layers, per_layer, intervention):
            yield
    else:
        with _edit_outputs(model, layers, per_layer, intervention, norms_after or {}):
            yield


SavedRows = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (weight, row indices, original rows)


def edit_weight_rows(
    weight: torch.Tensor,
    indices: Sequence[int],
    iv: Intervention,
    generator: torch.Generator,
    *,
    draw_shape: Sequence[int] | None = None,
    row_scale: torch.Tensor | None = None,
) -> SavedRows:
    """Apply ``iv``'s mode to rows ``indices`` of ``weight`` in place; return what restores them.

    Noise is drawn on the CPU from ``generator``, one ``[len(indices), *draw_shape]`` block per
    call (``draw_shape`` defaults to the row shape), so a seed gives the same ε on every device
    and on every copy of the model. ``row_scale`` multiplies each row's ε (the folded copy: BN
    scales the filter linearly). The caller edits layers in a fixed order with one generator."""
    idx = torch.tensor(list(indices), dtype=torch.long, device=weight.device)
    saved = (weight, idx, weight.index_select(0, idx).clone())
    if iv.mode == "zero":
        weight.index_fill_(0, idx, 0.0)
        return saved
    shape = tuple(draw_shape) if draw_shape is not None else tuple(weight.shape[1:])
    eps = torch.randn((len(idx), *shape), generator=generator) * float(iv.std)
    eps = eps.to(device=weight.device, dtype=weight.dtype).reshape(len(idx), *weight.shape[1:])
    if row_scale is not None:
        eps = eps * row_scale.to(weight.device)[idx].reshape(-1, *([1] * (weight.dim() - 1)))
    if iv.mode == "reinit":
        weight.index_copy_(0, idx, eps)
    else:
        weight.index_add_(0, idx, eps)
    return saved


def restore_weight_rows(saved: Sequence[SavedRows]) -> None:
    """Copy the saved rows back, last edit first (bit-for-bit the weights before the edits)."""
    with torch.no_grad():
        for weight, idx, original in reversed(saved):
            weight.index_copy_(0, idx, original)


@contextmanager
def _edit_weights(layers: Mapping[str, Layer], per_layer: dict[str, list[int]], iv: Intervention) -> Iterator[None]:
    saved: list[SavedRows] = []
    generator = torch.Generator().manual_seed(int(iv.seed))
    try:
        with torch.no_grad():
            for name, indices in per_layer.items():
                saved.append(edit_weight_rows(layers[name].weight, indices, iv, generator))
        yield
    finally:
        restore_weight_rows(saved)


@contextmanager
def _edit_outputs(
    model: nn.Module,
    layers: Mapping[str, Layer],
    per_layer: dict[str, list[int]],
    iv: Intervention,
    norms_after: Mapping[str, str],
) -> Iterator[None]:
    modules = dict(model.named_modules())
    targets = hook_targets(iv, layers, norms_after)
    handles = []
    generators: dict[str, torch.Generator] = {}

    def hook_for(
        layer_name: str, indices: Sequence[int]
    ) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], torch.Tensor]:
        channel_dim = 1 if layers[layer_name].kind == "conv" else -1

        def hook(_module: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
            out = out.clone()
            view = out.movedim(channel_dim, 0)  # a view: writes land in ``out``
            idx = torch.tensor(indices, dtype=torch.long, device=out.device)
            if iv.mode == "zero":
                view.index_fill_(0, idx, 0.0)
                return out
            gen = generators.get(layer_name)
            if gen is None:  # one stream per layer, seeded once per intervention
                gen = torch.Generator(device=out.device).manual_seed(int(iv.seed) * 1000003 + len(generators))
                generators[layer_name] = gen
            shape = (len(indices), *view.shape[1:])
            eps = torch.randn(shape, generator=gen, device=out.device, dtype=torch.float32) * float(iv.std)
            eps = eps.to(out.dtype)
            if iv.mode == "reinit":
                view.index_copy_(0, idx, eps)
            else:
                view.index_add_(0, idx, eps)
            return out

        return hook

    try:
        for layer_name, indices in per_layer.items():
            handles.append(modules[targets[layer_name]].register_forward_hook(hook_for(layer_name, indices)))
        yield
    finally:
        for handle in handles:
            handle.remove()
