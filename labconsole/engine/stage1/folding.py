"""Eval fast path: a copy of the model with every BatchNorm folded into the conv before it.

In eval mode ``BN(conv(x)) = s ⊙ conv(x) + (β − s·μ)`` with ``s = γ / √(σ² + ε)``, so the pair is
one conv with weight ``s·W`` and bias ``s·(b − μ) + β``: one layer less to compute and to store.

Interventions keep exactly the semantics documented in ``interventions`` (SPEC §4):

* ``weight`` mode edits the filter *before* BN. Zeroing ``W[c]`` makes the channel output BN's
  shift; on the folded conv that is ``W'[c] = 0`` with the folded bias left as it is. Noise and
  re-init draw the same ε from the same seeded generator and add / write ``s_c·ε`` (BN scales
  the filter linearly), so both models compute the same function up to float rounding.
* ``post-bn`` zero silences the channel after BN: on the folded conv that is its output, which
  zero weight *and* bias rows give exactly (the conv may compute its ReLU in the same kernel,
  ``fusion``, so a hook on its output would see the ReLU's result, or the residual sum's).

The original model is never edited by the fast path: the copy is, and it is restored exactly
(``index_copy_`` of the saved rows) on the way out, also when the readout raises.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from labconsole.engine.stage1.fusion import fuse_pointwise
from labconsole.engine.stage1.fx_trace import symbolic_trace
from labconsole.engine.stage1.interventions import Intervention, SavedRows, edit_weight_rows, restore_weight_rows
from labconsole.engine.stage1.neurons import Layer, group_by_layer

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class FoldedModel:
    """``graph``: the traced copy with BN folded; ``scales``: layer name → per-neuron factor the
    following BN applied (absent = not folded); ``folded_norm``: layer name → the BN it absorbed."""

    graph: fx.GraphModule
    scales: dict[str, torch.Tensor]
    folded_norm: dict[str, str]

    def module(self, name: str) -> nn.Module:
        return self.graph.get_submodule(name)


def fold_batchnorm(model: nn.Module, *, fuse: bool = True) -> FoldedModel | None:
    """A traced, folded eval copy of ``model`` (None when the model cannot be traced).
    ``fuse``: on the CPU, also compute each conv's ReLU (and residual add) in its kernel."""
    try:
        graph = symbolic_trace(copy.deepcopy(model).eval())
    except Exception:  # dynamic control flow: the caller keeps the plain path
        return None
    modules = dict(graph.named_modules())
    scales: dict[str, torch.Tensor] = {}
    folded: dict[str, str] = {}
    for node in list(graph.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(str(node.target)), _BN_TYPES):
            continue
        source = node.args[0] if node.args else None
        if not isinstance(source, fx.Node) or source.op != "call_module" or len(source.users) != 1:
            continue
        conv = modules.get(str(source.target))
        bn = modules[str(node.target)]
        if not isinstance(conv, _CONV_TYPES) or not isinstance(bn, _BN_TYPES):
            continue
        if bn.running_mean is None or bn.running_var is None:
            continue  # track_running_stats=False: batch statistics even in eval, cannot fold
        with torch.no_grad():
            gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_mean)
            beta = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
            scale = (gamma / torch.sqrt(bn.running_var + bn.eps)).detach().clone()
            weight, bias = fuse_conv_bn_weights(
                conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, gamma, beta
            )
            conv.weight = nn.Parameter(weight.detach(), requires_grad=False)
            conv.bias = nn.Parameter(bias.detach(), requires_grad=False)
        scales[str(source.target)] = scale
        folded[str(source.target)] = str(node.target)
        node.replace_all_uses_with(source)
        graph.graph.erase_node(node)
    graph.graph.lint()
    graph.recompile()
    for parameter in graph.parameters():
        parameter.requires_grad_(False)
    if fuse and all(p.device.type == "cpu" for p in graph.parameters()):
        fuse_pointwise(graph)
    return FoldedModel(graph, scales, folded)


def supports(intervention: Intervention) -> bool:
    """Interventions the folded path computes with the documented semantics. ``output`` mode
    and random post-BN edits (whose noise is drawn per batch) keep the plain path."""
    if intervention.where == "weight":
        return True
    return intervention.where == "post-bn" and intervention.mode == "zero"


def start_module(folded: FoldedModel, intervention: Intervention, norms_after: Mapping[str, str]) -> list[str]:
    """The folded modules an intervention changes (where a readout must start recomputing)."""
    names = list(group_by_layer(intervention.neurons))
    if intervention.where == "weight":
        return names
    return [name if name in folded.folded_norm else norms_after.get(name, name) for name in names]


@contextmanager
def apply_folded(
    folded: FoldedModel,
    layers: Mapping[str, Layer],
    intervention: Intervention,
    norms_after: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Apply ``intervention`` to the folded copy inside the ``with`` block; restore exactly."""
    per_layer = group_by_layer(intervention.neurons)
    if intervention.where == "weight":
        with _edit_folded_weights(folded, layers, per_layer, intervention):
            yield
        return
    targets = start_module(folded, intervention, norms_after or {})
    handles = []
    saved: list[SavedRows] = []
    try:
        for (name, indices), target in zip(per_layer.items(), targets):
            module = folded.module(target)
            if isinstance(module, _CONV_TYPES):
                _zero_output_rows(module, indices, intervention, saved)
            else:
                handles.append(module.register_forward_hook(_zero_channels(layers[name].kind, indices)))
        yield
    finally:
        for handle in handles:
            handle.remove()
        restore_weight_rows(saved)


def _zero_output_rows(conv: nn.Module, indices: list[int], iv: Intervention, saved: list[SavedRows]) -> None:
    """Zero filter and bias rows (the conv's output channels are then exactly 0), adding
    what restores them to ``saved`` as each is edited."""
    generator = torch.Generator()  # zero mode draws nothing
    rows = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
    with torch.no_grad():
        for tensor in rows:
            assert isinstance(tensor, torch.Tensor)
            saved.append(edit_weight_rows(tensor, indices, iv, generator))


def _zero_channels(
    kind: str, indices: list[int]
) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], torch.Tensor]:
    channel_dim = 1 if kind == "conv" else -1

    def hook(_module: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        idx = torch.tensor(indices, dtype=torch.long, device=out.device)
        out.movedim(channel_dim, 0).index_fill_(0, idx, 0.0)
        return out

    return hook


@contextmanager
def _edit_folded_weights(
    folded: FoldedModel, layers: Mapping[str, Layer], per_layer: dict[str, list[int]], iv: Intervention
) -> Iterator[None]:
    saved: list[SavedRows] = []
    # The same generator, order and draw shapes as interventions._edit_weights: the same ε,
    # scaled per row by the BN the conv absorbed.
    generator = torch.Generator().manual_seed(int(iv.seed))
    try:
        with torch.no_grad():
            for name, indices in per_layer.items():
                weight = folded.module(name).weight
                assert isinstance(weight, torch.Tensor)
                saved.append(
                    edit_weight_rows(
                        weight,
                        indices,
                        iv,
                        generator,
                        draw_shape=layers[name].weight.shape[1:],
                        row_scale=folded.scales.get(name),
                    )
                )
        yield
    finally:
        restore_weight_rows(saved)
