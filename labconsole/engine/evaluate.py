"""Group accuracy, worst-group accuracy and the named means (SPEC §1).

Every metric is named: ``mean`` (plain accuracy over the split), ``mean_train_weighted``
(group accuracies weighted by the *training* group proportions, what Waterbirds papers call
"average"), ``mean_groups`` (unweighted mean over groups). WGA = min over groups with at least
one example; its quantum is 1 / (size of the smallest group in the split).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from labconsole.engine.data.cache import TensorCache
from labconsole.engine.data.groups import GroupInfo
from labconsole.engine.records import SplitMetrics


def group_correct_counts(
    pred: torch.Tensor, y: torch.Tensor, g: torch.Tensor, num_groups: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct per group, count per group) as long tensors on pred's device."""
    correct = torch.bincount(g, weights=(pred == y).to(torch.float64), minlength=num_groups)
    total = torch.bincount(g, minlength=num_groups)
    return correct.round().long(), total


def split_metrics(
    correct: Sequence[int] | torch.Tensor,
    total: Sequence[int] | torch.Tensor,
    groups: GroupInfo,
    train_proportions: Sequence[float] | None = None,
) -> SplitMetrics:
    """The split's record from per-group counts. Every field is given (None where a split has
    no such number), so the record writes all of them: ``metrics.jsonl`` and ``summary.json``
    keep one layout whatever the split holds."""
    correct = [int(c) for c in (correct.tolist() if isinstance(correct, torch.Tensor) else correct)]
    total = [int(t) for t in (total.tolist() if isinstance(total, torch.Tensor) else total)]
    acc = {name: (c / t if t else None) for name, c, t in zip(groups.group_names, correct, total)}
    present = {k: v for k, v in acc.items() if v is not None}
    n = sum(total)
    worst = min(present, key=lambda name: present[name]) if present else None
    smallest = min((t for t in total if t), default=0)
    weights = list(train_proportions) if train_proportions is not None else None
    if weights is not None and sum(w for w, t in zip(weights, total) if t) > 0:
        norm = sum(w for w, t in zip(weights, total) if t)
        train_weighted = sum(w * (c / t) for w, c, t in zip(weights, correct, total) if t) / norm
    else:
        train_weighted = None
    return SplitMetrics(
        groups=acc,
        group_counts=dict(zip(groups.group_names, total)),
        wga=present[worst] if worst else None,
        worst_group=worst,
        mean=sum(correct) / n if n else None,
        mean_train_weighted=train_weighted,
        mean_groups=sum(present.values()) / len(present) if present else None,
        wga_quantum=1.0 / smallest if smallest else None,
        n=n,
    )


@torch.no_grad()
def predict(model: torch.nn.Module, cache: TensorCache, batch_size: int = 512) -> torch.Tensor:
    """Predicted class for every cached image (model in eval mode; bf16 autocast on CUDA)."""
    was_training = model.training
    model.eval()
    preds = []
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cache.device.type == "cuda" else _nullcontext()
    try:
        with autocast:
            for x, _, _ in cache.batches(batch_size):
                preds.append(model(x).argmax(dim=1))
    finally:
        model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long, device=cache.device)


def evaluate_cache(
    model: torch.nn.Module,
    cache: TensorCache,
    groups: GroupInfo,
    train_proportions: Sequence[float] | None = None,
    batch_size: int = 512,
) -> SplitMetrics:
    pred = predict(model, cache, batch_size)
    correct, total = group_correct_counts(pred, cache.y, cache.g, groups.num_groups)
    return split_metrics(correct, total, groups, train_proportions)


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
