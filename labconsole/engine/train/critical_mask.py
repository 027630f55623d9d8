"""Which weights the auxiliary model masks in one fine-tuning epoch (SPEC §5 step 2-3).

Built on the Stage I scores (``labconsole.engine.stage1.ranking``): magnitude, gradient, or both
(union of the two top-p % sets). The gradient is taken on a batch chosen without group
labels by default (Paper A §2.2): per-example CE on the training set, the 256 highest, 128 of
them drawn at random. The ``minority-groups`` source restricts that search to the minority
groups (the smaller half of the groups by training count), which needs group labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from pydantic import JsonValue
from torch import nn

from labconsole.config.finetune import FinetuneConfig
from labconsole.engine.data.cache import TensorCache
from labconsole.engine.data.groups import DatasetBundle
from labconsole.engine.stage1.neurons import Layer
from labconsole.engine.stage1.ranking import (
    gradient_scores,
    magnitude_scores,
    normalise_per_layer,
    per_sample_loss,
    top_neurons,
)
from labconsole.engine.train.masking import WeightMask, neuron_mask, smallest_weights_mask
from labconsole.errors import UserError


@dataclass(frozen=True)
class GradientBatch:
    index: torch.Tensor  # training-split (or pool) indices, sorted
    source: str
    searched: int  # how many examples were scored


def has_group_labels(bundle: DatasetBundle) -> bool:
    """True when the dataset distinguishes a spurious attribute (more than one attribute value)."""
    return len(bundle.groups.attr_names) > 1


def minority_group_indices(bundle: DatasetBundle) -> list[int]:
    """The smaller half of the groups by training count (Waterbirds: landbird-water, waterbird-land)."""
    if not has_group_labels(bundle):
        raise UserError(
            f'finetune.gradient_source = "minority-groups" needs group labels, and dataset '
            f'{bundle.name!r} has none (one attribute value only); use gradient_source = "full-train"'
        )
    counts = bundle.split("train").group_counts(bundle.groups.num_groups)
    present = [g for g, c in enumerate(counts) if c > 0]
    ordered = sorted(present, key=lambda g: counts[g])
    return ordered[: max(1, len(ordered) // 2)]


def worst_then_sampled(
    model: nn.Module, cache: TensorCache, members: torch.Tensor, *, worst: int, sampled: int, seed: int
) -> torch.Tensor:
    """Among ``members`` (indices into ``cache``): the ``worst`` highest-CE examples, then
    ``sampled`` of them drawn at random (seeded). Sorted indices."""
    if len(members) == 0:
        raise UserError("the gradient source holds no training examples")
    losses = per_sample_loss(model, cache, members)
    n_worst = min(worst, len(members))
    worst_idx = members[torch.topk(losses, n_worst).indices.to(members.device)]
    generator = torch.Generator().manual_seed(int(seed))
    pick = torch.randperm(n_worst, generator=generator)[: min(sampled, n_worst)]
    return torch.sort(worst_idx[pick.to(worst_idx.device)]).values


def gradient_batch(
    model: nn.Module, cache: TensorCache, bundle: DatasetBundle, cfg: FinetuneConfig, seed: int
) -> GradientBatch:
    if cfg.gradient_source == "minority-groups":
        minority = torch.tensor(minority_group_indices(bundle), device=cache.g.device)
        members = torch.nonzero(torch.isin(cache.g, minority)).flatten()
    else:
        members = torch.arange(len(cache), device=cache.g.device)
    index = worst_then_sampled(model, cache, members, worst=cfg.worst_samples, sampled=cfg.sampled, seed=seed)
    return GradientBatch(index=index, source=cfg.gradient_source, searched=len(members))


def critical_neurons(
    model: nn.Module,
    layers: Sequence[Layer],
    cfg: FinetuneConfig,
    *,
    cache: TensorCache | None = None,
    bundle: DatasetBundle | None = None,
    seed: int = 0,
) -> tuple[list[tuple[str, int]], dict[str, JsonValue]]:
    """The neurons to mask, and plain-value details of how they were chosen."""
    names = [layer.name for layer in layers]
    chosen: list[tuple[str, int]] = []
    info: dict[str, JsonValue] = {"criterion": cfg.criterion, "percent": cfg.prune_percent}
    if cfg.criterion in ("magnitude", "combined"):
        scores = magnitude_scores(layers, cfg.norm)
        if cfg.per_layer_normalise:
            scores = normalise_per_layer(scores)
        top = top_neurons(scores, "top-percent", cfg.prune_percent, names)
        chosen += [(layer, index) for layer, index, _ in top]
        info["magnitude"] = len(top)
    if cfg.criterion in ("gradient", "combined"):
        if cache is None or bundle is None:
            raise ValueError("the gradient criterion needs the training cache and the dataset")
        batch = gradient_batch(model, cache, bundle, cfg, seed)
        scores = gradient_scores(model, layers, cache, batch.index, cfg.norm)
        if cfg.per_layer_normalise:
            scores = normalise_per_layer(scores)
        top = top_neurons(scores, "top-percent", cfg.prune_percent, names)
        new = [(layer, index) for layer, index, _ in top if (layer, index) not in chosen]
        chosen += new
        info.update(
            {
                "gradient": len(top),
                "gradient_source": batch.source,
                "gradient_examples": len(batch.index),
                "searched": batch.searched,
            }
        )
    return chosen, info


def build_epoch_mask(
    model: nn.Module,
    layers: Sequence[Layer],
    cfg: FinetuneConfig,
    *,
    cache: TensorCache | None = None,
    bundle: DatasetBundle | None = None,
    seed: int = 0,
) -> tuple[WeightMask, dict[str, JsonValue]]:
    """The auxiliary model's mask for one epoch, computed from the target's current weights.

    ``info`` states the realised size next to the requested one: p = 0.01 % of 336 neurons is
    one neuron, i.e. 0.30 % of them."""
    eligible = sum(layer.n_neurons for layer in layers)
    if cfg.prune_percent == 0:  # mask off: the auxiliary branch is the target itself
        empty = WeightMask(keep={}, kind="none", description="nothing (p = 0: plain two-view contrast)")
        return empty, {"mask": "none", "percent": 0.0, **realised_size(0, eligible, "neurons")}
    if cfg.mask == "smallest-weights":
        mask = smallest_weights_mask(layers, cfg.prune_percent)
        info = realised_size(mask.masked_entries, mask.total_entries, "weights")
        return mask, {"mask": "smallest-weights", "percent": cfg.prune_percent, **info}
    neurons, info = critical_neurons(model, layers, cfg, cache=cache, bundle=bundle, seed=seed)
    size = realised_size(len(neurons), eligible, "neurons")
    return neuron_mask(model, layers, neurons), {"mask": "critical-neurons", **info, **size}


def realised_size(masked: int, total: int, unit: str) -> dict[str, JsonValue]:
    """How many units the mask really holds, of how many, as a percentage."""
    percent = 100.0 * masked / total if total else 0.0
    return {
        "realised_count": masked,
        "eligible_count": total,
        "realised_percent": percent,
        "realised_unit": unit,
    }
