"""A ``Session``'s baseline: the unmodified model's logits, accuracies and (on train) losses.

On the fast path the logits come from the folded model, walked "subsample, then the rest", and
are kept in the run directory (``run_baselines``) so the next session on the same run, model
and data starts from them; the plain path runs its own pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from labconsole.engine.stage1 import session_walk as walk
from labconsole.engine.stage1.fast_eval import PARTS
from labconsole.engine.stage1.fusion import FusedConv2d
from labconsole.engine.stage1.readout import group_accuracy
from labconsole.engine.stage1.run_baselines import BaselineStore

if TYPE_CHECKING:
    from labconsole.engine.stage1.session import Session


def baseline_logits(session: Session, split: str) -> torch.Tensor | None:
    """Logits of the unmodified folded model on ``split`` (split order); None without a fast path."""
    fast = session.fast_evaluator(split)
    if fast is None:
        return None
    if split not in session._base_logits:
        store = _bound_store(session)
        logits = store.read(split, len(fast.order)) if store is not None else None
        if logits is None:
            ordered = torch.cat([fast.logits(part, session.cancel) for part in PARTS])
            logits = torch.empty_like(ordered)
            logits[fast.order.to(ordered.device)] = ordered
            if store is not None:
                store.write(split, logits)
        session._base_logits[split] = logits.to(fast.y_ordered.device)
    return session._base_logits[split]


def baseline(session: Session, split: str) -> list[float | None]:
    """Per-group accuracy of the unmodified model on ``split`` (group order), computed once; on
    the fast path also each example's correctness and, for train, its loss (the gradient
    criterion's worst samples come from it: no second pass)."""
    if split in session._baselines:
        return session._baselines[split]
    fast = session.fast_evaluator(split)
    by_example = baseline_logits(session, split)
    if fast is not None and by_example is not None:
        logits = by_example[fast.order.to(by_example.device)]
        session._base_correct[split] = correct = logits.argmax(dim=1) == fast.y_ordered
        if split == "train":
            session._train_losses = F.cross_entropy(by_example, session.cache("train").y, reduction="none")
        session._baselines[split] = walk.group_accuracy_of(session, correct, fast.g_ordered)
    else:
        cache = session.cache(split)
        pred = session.evaluator(split).predictions(None, session.cancel)
        session._baselines[split] = group_accuracy(pred, cache.y, cache.g, session.bundle.groups.num_groups)
    return session._baselines[split]


def _bound_store(session: Session) -> BaselineStore | None:
    """The session's store, keyed (once) to its model and evaluation settings."""
    store = session._store
    if store is not None and not session._store_bound:
        settings = {
            "batch_size": session.config.batch_size,
            "estimate_cap": session.estimate_cap,
            "sample_seed": session.config.sample_seed,
            "device": session.device.type,
            "graph": _graph_kind(session),
        }
        store.bind(session.model, settings)
        session._store_bound = True
    return store


def _graph_kind(session: Session) -> str:
    """How the logits are computed (the kernels may round differently)."""
    folded = session.folded()
    if folded is None:
        return "plain"
    return "folded+fused" if any(isinstance(m, FusedConv2d) for m in folded.graph.modules()) else "folded"
