"""DFR-style baseline (Kirichenko et al. 2023): keep the ERM feature extractor, retrain only the
last layer on a group-balanced half of the validation set.

The validation set is split in two halves, stratified by group (seeded). Half A trains a
logistic regression on standardised penultimate features, each time on a group-balanced draw
(every group cut to A's smallest group); half B chooses the inverse regularisation strength C
by worst-group accuracy. The final head averages ``balanced_draws`` fits at the chosen C and is
written into the model's Linear head, so the result is an ordinary checkpoint evaluated like any
other. Needs group labels (it is a group-aware baseline).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from labconsole.config.finetune import DfrConfig
from labconsole.engine.context import StageContext
from labconsole.engine.data.cache import TensorCache
from labconsole.engine.data.groups import DatasetBundle
from labconsole.engine.evaluate import split_metrics
from labconsole.engine.events import StageStarted
from labconsole.engine.models.checkpoint import save_checkpoint
from labconsole.engine.models.factory import forward_features, get_head
from labconsole.engine.pipeline import autocast_for, ensure_cache, ensure_dataset, evaluate_metrics, model_meta
from labconsole.engine.records import DfrSection, Selection
from labconsole.engine.train.start import load_model_from
from labconsole.errors import PresetError, UserError


def base_checkpoint(ctx: StageContext) -> tuple[Path, str]:
    """The ERM model whose last layer is retrained: this run's selected ERM, or model.checkpoint."""
    from labconsole.engine.models.checkpoint import resolve_checkpoint
    from labconsole.engine.train.start import erm_trained_in_this_run

    if erm_trained_in_this_run(ctx):
        return ctx.run.checkpoints / "best.safetensors", "ERM of this run, selected by val WGA"
    if ctx.preset.model.checkpoint:
        path = resolve_checkpoint(ctx.preset.model.checkpoint, "best")
        return path, f"model.checkpoint ({path})"
    raise PresetError(
        f'stage `{ctx.stage or "dfr"}` needs an ERM model: list "erm" before it in `stages`, or give one with '
        "--set model.checkpoint=RUN_DIR_OR_FILE"
    )


@torch.no_grad()
def penultimate_features(model: nn.Module, cache: TensorCache, device: torch.device, batch_size: int) -> np.ndarray:
    model.eval()
    out = []
    with autocast_for(device):
        for x, _, _ in cache.batches(batch_size):
            out.append(forward_features(model, x).float().cpu())
    return torch.cat(out).numpy()


def split_halves(g: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two halves with (as nearly as possible) equal group counts."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for group in np.unique(g):
        members = rng.permutation(np.flatnonzero(g == group))
        cut = (len(members) + 1) // 2
        first.append(members[:cut])
        second.append(members[cut:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def balanced_draw(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    groups, counts = np.unique(g, return_counts=True)
    smallest = int(counts.min())
    return np.concatenate([rng.choice(np.flatnonzero(g == k), smallest, replace=False) for k in groups])


def _fit(x: np.ndarray, y: np.ndarray, c: float, cfg: DfrConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    l1 = 1.0 if cfg.penalty == "l1" else 0.0
    binary = len(np.unique(y)) <= 2
    clf = LogisticRegression(
        C=c, l1_ratio=l1, solver="liblinear" if binary else "saga", max_iter=cfg.max_iter, random_state=seed
    )
    clf.fit(x, y)
    return clf.coef_, clf.intercept_


def _head_from(coef: np.ndarray, intercept: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A binary logistic regression scores class 1 only: logits (0, w·x + b) give the same argmax."""
    if coef.shape[0] == 1 and num_classes == 2:
        return np.vstack([np.zeros_like(coef[0]), coef[0]]), np.array([0.0, intercept[0]])
    return coef, intercept


def _wga(pred: np.ndarray, y: np.ndarray, g: np.ndarray, bundle: DatasetBundle) -> float:
    correct = np.bincount(g, weights=(pred == y).astype(float), minlength=bundle.groups.num_groups)
    total = np.bincount(g, minlength=bundle.groups.num_groups)
    return float(min(c / t for c, t in zip(correct, total) if t))


def run_dfr_stage(ctx: StageContext) -> DfrSection:
    cfg = ctx.preset.finetune.dfr
    bundle = ensure_dataset(ctx)
    if len(bundle.groups.attr_names) < 2:
        raise UserError(f"stage `dfr` balances groups and dataset {bundle.name!r} has no group labels")
    path, source = base_checkpoint(ctx)
    ctx.log(f"DFR: retraining the last layer of {path}")
    ctx.emit(StageStarted(run_id=ctx.run_id, stage="dfr", total_epochs=0))
    model = load_model_from(ctx, path)
    before = evaluate_metrics(ctx, model, ("val", "test"))

    val = ensure_cache(ctx, "val")
    features = penultimate_features(model, val, ctx.device, cfg.batch_size)
    y, g = val.y.cpu().numpy(), val.g.cpu().numpy()
    half_a, half_b = split_halves(g, ctx.preset.seed)
    if len(np.unique(g[half_a])) < bundle.groups.num_groups:
        ctx.log("DFR: some groups have no validation examples in the training half", level="warning")
    mean, std = features[half_a].mean(0), features[half_a].std(0) + 1e-8
    scaled = (features - mean) / std
    rng = np.random.default_rng(ctx.preset.seed)

    scores: dict[float, float] = {}
    for c in cfg.c_values:
        ctx.check_cancel()
        wgas = []
        for _ in range(cfg.balanced_draws):
            pick = half_a[balanced_draw(g[half_a], rng)]
            coef, intercept = _fit(scaled[pick], y[pick], c, cfg, ctx.preset.seed)
            w, b = _head_from(coef, intercept, bundle.groups.num_classes)
            pred = (scaled[half_b] @ w.T + b).argmax(1)
            wgas.append(_wga(pred, y[half_b], g[half_b], bundle))
        scores[c] = float(np.mean(wgas))
    best_c = max(cfg.c_values, key=lambda c: (scores[c], -c))

    heads = []
    for _ in range(cfg.balanced_draws):
        pick = half_a[balanced_draw(g[half_a], rng)]
        heads.append(_head_from(*_fit(scaled[pick], y[pick], best_c, cfg, ctx.preset.seed), bundle.groups.num_classes))
    w = np.mean([h[0] for h in heads], axis=0)
    b = np.mean([h[1] for h in heads], axis=0)
    # Undo the standardisation: w·(x − μ)/σ + b = (w/σ)·x + (b − w·μ/σ).
    head = get_head(model)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(w / std, dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(b - (w * mean / std).sum(1), dtype=head.bias.dtype))
    after = evaluate_metrics(ctx, model, ("val", "test"))
    held_out_pred = (scaled[half_b] @ w.T + b).argmax(1)
    correct = np.bincount(
        g[half_b], weights=(held_out_pred == y[half_b]).astype(float), minlength=bundle.groups.num_groups
    )
    total = np.bincount(g[half_b], minlength=bundle.groups.num_groups)
    held_out = split_metrics(
        correct.round().astype(int).tolist(), total.tolist(), bundle.groups, bundle.train_group_proportions()
    )
    out_path = save_checkpoint(
        ctx.run.checkpoints / "dfr", model, {**model_meta(ctx, bundle), "stage": "dfr", "base": str(path), "C": best_c}
    )
    ctx.state["model"] = model
    # The selection's C and its WGA per C, and the halves' sizes, are kept beyond the record's
    # fields (extra keys): the report shows them as they are.
    return DfrSection(
        method=f"DFR: logistic regression ({cfg.penalty}) on penultimate features of a group-balanced half "
        f"of validation, C chosen by WGA on the other half, {cfg.balanced_draws} balanced draws averaged",
        base=source,
        selection=Selection(
            rule="C with best WGA on the held-out validation half",
            C=best_c,
            wga_by_C={str(c): s for c, s in scores.items()},
        ),
        splits={"test": after["test"], "val": after["val"], "val_held_out_half": held_out},
        wga_before={s: metrics.wga for s, metrics in before.items()},
        wga_after={"test": after["test"].wga, "val_held_out_half": held_out.wga},
        halves={"train": len(half_a), "select": len(half_b)},
        checkpoint=str(out_path),
    )
