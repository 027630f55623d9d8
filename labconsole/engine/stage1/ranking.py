"""Neuron scores and rankings (SPEC §4, Paper A §2.1).

Criteria
* ``magnitude``: ‖θ_n‖ of the neuron's weight slice; group-independent.
* ``gradient``: ‖∇_{θ_n} L_CE(f_θ; S_g)‖ where S_g = ``sampled`` examples drawn at random from the
  ``worst`` examples of group g (highest CE on the logits); Paper A: worst 256 → random 128.
* ``activation``: mean |output| of the neuron on S_g.

L2 norm by default, L1 as an option. Scopes: ``global`` top-k over the model, ``per-layer`` top-k
inside every eligible layer, ``top-percent`` (k = a percentage of all eligible neurons).

Gradients and activations are taken with the model in eval mode (BatchNorm uses its running
statistics), the same mode in which every readout is measured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from labconsole.config.vocab import (
    CRITERIA,
    NORMS,
    SCOPE_ALIASES,
    SCOPES,
    Scope,
    check_k,
    check_percent,
    count_of_percent,
)
from labconsole.engine.data.cache import TensorCache
from labconsole.engine.stage1.call_progress import CallProgress, rate_limited
from labconsole.engine.stage1.neurons import Layer, NeuronRef, neuron_slices
from labconsole.errors import UserError

Scores = dict[str, torch.Tensor]  # layer name -> score per neuron (1-D)


@dataclass(frozen=True)
class Ranking:
    """A ranking as plain values: ``neurons`` = ((layer, index, score), ...) best first, and the
    training-split indices of the examples the scores were computed on, per group name."""

    criterion: str
    group: str | None
    scope: str
    k: float
    norm: str
    per_layer_normalise: bool
    neurons: tuple[tuple[str, int, float], ...]
    samples_used: dict[str, tuple[int, ...]] = field(default_factory=dict)
    score: str = "paper"  # "paper" (the group's score) or "specific" (relative to the other groups)

    def refs(self) -> list[NeuronRef]:
        return [(layer, index) for layer, index, _ in self.neurons]

    def to_dict(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "group": self.group,
            "scope": self.scope,
            "k": self.k,
            "norm": self.norm,
            "per_layer_normalise": self.per_layer_normalise,
            "neurons": [list(n) for n in self.neurons],
            "samples_used": {g: list(v) for g, v in self.samples_used.items()},
            "score": self.score,
        }


def check_criterion(criterion: str) -> str:
    if criterion not in CRITERIA:
        raise UserError(f"unknown criterion {criterion!r} (expected one of {', '.join(CRITERIA)})")
    return criterion


def check_norm(norm: str) -> int:
    if norm not in NORMS:
        raise UserError(f"unknown norm {norm!r} (expected one of {', '.join(NORMS)})")
    return 1 if norm == "l1" else 2


def normalise_scope(scope: str) -> Scope:
    try:
        return SCOPE_ALIASES[scope]
    except KeyError:
        raise UserError(f"unknown scope {scope!r} (expected one of {', '.join(SCOPES)})") from None


# -- scores ------------------------------------------------------------------------------------


def magnitude_scores(layers: Sequence[Layer], norm: str = "l2") -> Scores:
    p = check_norm(norm)
    with torch.no_grad():
        return {layer.name: neuron_slices(layer.weight).float().norm(p=p, dim=1) for layer in layers}


@torch.no_grad()
def per_sample_loss(model: nn.Module, cache: TensorCache, index: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Cross-entropy on the logits for each example of ``index`` (model in eval mode)."""
    was_training = model.training
    model.eval()
    losses = []
    try:
        for x, y, _ in cache.batches(batch_size, index):
            losses.append(F.cross_entropy(model(x).float(), y, reduction="none"))
    finally:
        model.train(was_training)
    return torch.cat(losses) if losses else torch.empty(0, device=cache.device)


def select_gradient_samples(
    model: nn.Module,
    cache: TensorCache,
    group: int | None,
    *,
    worst: int = 256,
    sampled: int = 128,
    seed: int = 0,
    batch_size: int = 512,
    losses: torch.Tensor | None = None,
) -> torch.Tensor:
    """Paper A §4: the ``worst`` highest-loss examples of the group, then ``sampled`` of them at
    random (seeded). Returns sorted split indices (fewer when the group is smaller).

    ``losses``: the per-example loss over the whole split when a baseline pass already computed
    it (the session's), so no second pass over the group is needed."""
    members = (
        torch.arange(len(cache), device=cache.g.device) if group is None else torch.nonzero(cache.g == group).flatten()
    )
    if len(members) == 0:
        raise UserError(f"group {group} has no examples in the {cache.name} split")
    if losses is None:
        member_losses = per_sample_loss(model, cache, members, batch_size)
    else:
        member_losses = losses.to(members.device)[members]
    n_worst = min(worst, len(members))
    worst_idx = members[torch.topk(member_losses, n_worst).indices.to(members.device)]
    generator = torch.Generator().manual_seed(int(seed))
    pick = torch.randperm(n_worst, generator=generator)[: min(sampled, n_worst)]
    return torch.sort(worst_idx[pick.to(worst_idx.device)]).values


def gradient_scores(
    model: nn.Module,
    layers: Sequence[Layer],
    cache: TensorCache,
    index: torch.Tensor,
    norm: str = "l2",
    batch_size: int = 256,
    bn_mode: str = "eval",
    progress: CallProgress | None = None,
) -> Scores:
    """Norm of ∇ mean-CE(logits) over the examples ``index`` w.r.t. each neuron's weight slice.

    Uses ``autograd.grad`` on the eligible weights only, so no ``.grad`` of the model is touched.
    ``bn_mode``: "eval" (running statistics, default) or "train" (BatchNorm normalises with the
    statistics of each batch of ``index``; the running statistics are restored afterwards).
    ``progress`` gets (examples done, examples in ``index``) after each batch, ≤ ~10×/s."""
    report = rate_limited(progress)
    p = check_norm(norm)
    if bn_mode not in ("eval", "train"):
        raise UserError(f"neurons.gradient_bn = {bn_mode!r}: expected eval or train")
    weights = [layer.weight for layer in layers]
    flags = [w.requires_grad for w in weights]
    was_training = model.training
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms] if bn_mode == "train" else []
    if bn_mode == "train":
        for module in norms:
            module.train()
    total = [torch.zeros_like(w, dtype=torch.float32) for w in weights]
    try:
        for w in weights:
            w.requires_grad_(True)
        n, done = len(index), 0
        with torch.enable_grad():
            for x, y, _ in cache.batches(batch_size, index):
                loss = F.cross_entropy(model(x).float(), y, reduction="sum") / n
                grads = torch.autograd.grad(loss, weights, allow_unused=True)
                for acc, grad in zip(total, grads):
                    if grad is not None:
                        acc += grad.float()
                done += len(y)
                if report is not None:
                    report(done, n)
    finally:
        for w, flag in zip(weights, flags):
            w.requires_grad_(flag)
        with torch.no_grad():
            for module, state in zip(norms, saved):
                module.load_state_dict(state)
        model.train(was_training)
    return {layer.name: neuron_slices(g).norm(p=p, dim=1) for layer, g in zip(layers, total)}


@torch.no_grad()
def activation_scores(
    model: nn.Module, layers: Sequence[Layer], cache: TensorCache, index: torch.Tensor, batch_size: int = 512
) -> Scores:
    """Mean |output| of every neuron over the examples ``index`` (and spatial positions/tokens)."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook_for(layer: Layer) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def hook(_module: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            a = out.detach().float().abs()
            if layer.kind == "conv":  # [B, C, *spatial] → per channel
                per = a.transpose(0, 1).reshape(a.shape[1], -1)
            else:  # [..., out] → per output feature
                per = a.reshape(-1, a.shape[-1]).transpose(0, 1)
            sums[layer.name] = sums.get(layer.name, 0) + per.sum(dim=1)
            counts[layer.name] = counts.get(layer.name, 0) + per.shape[1]

        return hook

    handles = [layer.module.register_forward_hook(hook_for(layer)) for layer in layers]
    was_training = model.training
    model.eval()
    try:
        for x, _, _ in cache.batches(batch_size, index):
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return {layer.name: sums[layer.name] / max(1, counts[layer.name]) for layer in layers if layer.name in sums}


def normalise_per_layer(scores: Scores) -> Scores:
    """Each layer's scores divided by that layer's mean score: raw gradient norms differ by
    orders of magnitude between layers, so a raw global ranking mostly picks one layer."""
    return {name: s / s.mean().clamp_min(1e-30) for name, s in scores.items()}


SPECIFICITY_FLOOR = 1e-3  # of a layer-normalised score: a neuron silent on the other groups is not infinite


def specificity_scores(group: Scores, others: Sequence[Scores]) -> Scores:
    """How much more a neuron scores on this group than on the others, layer scale removed:
    ``ŝ_g(n) / (mean over other groups ŝ_g'(n) + floor)`` with ``ŝ = s / mean of s over the
    layer``. A neuron that is large for every group (an early layer's scale) scores about 1."""
    if not others:
        raise UserError("the specificity score needs at least one other group to compare with")
    own = normalise_per_layer(group)
    rest = [normalise_per_layer(o) for o in others]
    return {name: own[name] / (torch.stack([r[name] for r in rest]).mean(dim=0) + SPECIFICITY_FLOOR) for name in own}


# -- selection ---------------------------------------------------------------------------------


def top_neurons(
    scores: Scores, scope: str, k: float, layer_order: Sequence[str] | None = None
) -> list[tuple[str, int, float]]:
    """The selected neurons, best first, as ``(layer, index, score)`` plain values."""
    scope = normalise_scope(scope)
    names = list(layer_order) if layer_order is not None else list(scores)
    total = sum(len(scores[n]) for n in names)
    if scope == "top-percent":
        percent = check_percent(k, key="top-percent k")
        count = count_of_percent(total, percent, rounding="up")
        return _global_top(scores, names, count)
    if scope == "global":
        return _global_top(scores, names, check_k(k, key="top-k", at_most=total))
    count = check_k(k, key="per-layer top-k")
    out: list[tuple[str, int, float]] = []
    for name in names:
        s = scores[name]
        if count > len(s):
            raise UserError(f"per-layer top-k = {count} is larger than layer {name} ({len(s)} neurons)")
        values, idx = torch.topk(s.float(), count)
        out.extend((name, int(i), float(v)) for v, i in zip(values.tolist(), idx.tolist()))
    out.sort(key=lambda item: -item[2])
    return out


def _global_top(scores: Scores, names: Sequence[str], count: int) -> list[tuple[str, int, float]]:
    flat = torch.cat([scores[n].float().flatten().cpu() for n in names])
    owner = [(n, i) for n in names for i in range(len(scores[n]))]
    # A stable sort keeps ties in layer order, so rankings are reproducible.
    order = torch.sort(flat, descending=True, stable=True).indices[:count]
    return [(owner[j][0], owner[j][1], float(flat[j])) for j in order.tolist()]


def percentile_ranks(scores: Scores, names: Sequence[str]) -> dict[tuple[str, int], float]:
    """Percentile rank (0-100, 100 = largest) of every neuron among all neurons of ``names``."""
    flat = torch.cat([scores[n].float().flatten().cpu() for n in names])
    owner = [(n, i) for n in names for i in range(len(scores[n]))]
    order = torch.argsort(flat, stable=True)
    ranks = torch.empty_like(order, dtype=torch.float64)
    ranks[order] = torch.arange(len(flat), dtype=torch.float64)
    scale = 100.0 / max(1, len(flat) - 1)
    return {owner[j]: float(ranks[j]) * scale for j in range(len(flat))}
