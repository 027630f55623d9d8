"""Stage 0: ERM (SPEC §3) with per-epoch group accuracies and selection by best val WGA.

Each epoch writes ``last`` (and ``best`` when val WGA improves) plus ``resume.pt`` (optimizer,
scheduler, RNG, history), so an interrupted run continues from its last finished epoch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from labconsole.config.erm import ErmConfig
from labconsole.engine.context import Cancelled, StageContext
from labconsole.engine.events import EpochResult, StageStarted
from labconsole.engine.models.checkpoint import save_checkpoint
from labconsole.engine.pipeline import autocast_for, ensure_dataset, ensure_model, evaluate_metrics, model_meta
from labconsole.engine.records import ErmResult, Selection
from labconsole.engine.train.batches import TrainBatches
from labconsole.engine.train.state import EpochLog, TrainState, load_train_state, save_train_state


def make_optimizer(params: Iterable[nn.Parameter], cfg: ErmConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def group_weights(g: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Per-group loss weights ∝ 1 / group size, normalised to mean 1 over examples."""
    counts = torch.bincount(g, minlength=num_groups).float().clamp(min=1)
    w = 1.0 / counts
    return w / (w[g].mean())


def subsample_index(g: torch.Tensor, num_groups: int, generator: torch.Generator) -> torch.Tensor:
    """Every group cut down to the size of the smallest non-empty group (drawn afresh per epoch)."""
    counts = torch.bincount(g, minlength=num_groups)
    smallest = int(counts[counts > 0].min())
    parts = []
    for k in range(num_groups):
        members = torch.nonzero(g == k).flatten()
        if len(members):
            parts.append(members[torch.randperm(len(members), generator=generator)[:smallest]])
    return torch.cat(parts)


def train_erm(ctx: StageContext) -> ErmResult:
    """Train by ERM, select an epoch (best val WGA or the last) and load its weights."""
    cfg = ctx.preset.erm
    bundle = ensure_dataset(ctx)
    model = ensure_model(ctx)
    device = ctx.device
    torch.manual_seed(ctx.preset.seed)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model.parameters(), cfg)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
    )
    train_split = bundle.split("train")
    batches = TrainBatches(
        bundle,
        train_split,
        batch_size=cfg.batch_size,
        device=device,
        augment=ctx.preset.data.augment,
        seed=ctx.preset.seed,
        num_workers=ctx.preset.data.num_workers,
    )
    weights = group_weights(train_split.g, bundle.groups.num_groups).to(device) if cfg.balance == "reweight" else None
    meta = model_meta(ctx, bundle)

    state = load_train_state(ctx.run, "erm", model, optimizer, scheduler, batches.generator) or TrainState()
    if state.epoch:
        ctx.log(f"resuming ERM after epoch {state.epoch} (best val WGA at epoch {state.best_epoch})")
    ctx.emit(StageStarted(run_id=ctx.run_id, stage="erm", total_epochs=cfg.epochs))
    started = time.monotonic()
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        index = (
            subsample_index(train_split.g, bundle.groups.num_groups, batches.generator)
            if cfg.balance == "subsample"
            else None
        )
        train_loss = _train_one_epoch(ctx, model, optimizer, batches, index, weights, epoch, cfg.epochs, started, state)
        splits = evaluate_metrics(ctx, model, ("train", "val", "test") if cfg.eval_train else ("val", "test"))
        val_loss = _loss_on(ctx, model, "val")
        scheduler.step(val_loss)
        wga = splits["val"].wga if "val" in splits else None
        improved = cfg.selection == "last" or (wga is not None and (state.best_wga is None or wga > state.best_wga))
        if improved:
            state.best_wga, state.best_epoch, state.best_splits = wga, epoch, splits
            save_checkpoint(ctx.run.checkpoints / "best", model, {**meta, "epoch": epoch, "val_wga": wga})
        save_checkpoint(ctx.run.checkpoints / "last", model, {**meta, "epoch": epoch})
        if epoch in cfg.keep_epochs or (cfg.save_every and epoch % cfg.save_every == 0):
            save_checkpoint(ctx.run.checkpoints / f"epoch_{epoch:03d}", model, {**meta, "epoch": epoch})
        state.epoch = epoch
        state.history.append(EpochLog(epoch=epoch, train_loss=train_loss, val_loss=val_loss))
        save_train_state(ctx.run, "erm", model, optimizer, scheduler, batches.generator, state)
        ctx.emit(
            EpochResult(
                run_id=ctx.run_id,
                stage="erm",
                epoch=epoch,
                total_epochs=cfg.epochs,
                splits=splits,
                train_loss=train_loss,
                lr=optimizer.param_groups[0]["lr"],
                is_best=improved,
                best_epoch=state.best_epoch,
                selection=_selection_text(cfg),
            )
        )
    _load_best(ctx, model)
    ctx.state["checkpoint"] = ctx.run.checkpoints / "best.safetensors"
    if state.best_splits and "train" not in state.best_splits:
        state.best_splits = {**evaluate_metrics(ctx, model, ("train",)), **state.best_splits}
    return ErmResult(
        selection=Selection(rule=_selection_text(cfg), epoch=state.best_epoch, val_wga=state.best_wga),
        splits=state.best_splits,
        epochs=state.epoch,
    )


def _selection_text(cfg: ErmConfig) -> str:
    return "best val WGA" if cfg.selection == "best-val-wga" else "last epoch"


def _train_one_epoch(
    ctx: StageContext,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: TrainBatches,
    index: torch.Tensor | None,
    weights: torch.Tensor | None,
    epoch: int,
    total_epochs: int,
    started: float,
    state: TrainState,
) -> float:
    model.train()
    total_steps = batches.num_batches(None if index is None else len(index))
    loss_sum = torch.zeros((), device=ctx.device)
    seen = 0
    for step, (x, y, g, _) in enumerate(batches.epoch(index), start=1):
        if ctx.cancel.is_set():
            raise Cancelled()
        if ctx.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_for(ctx.device):
            logits = model(x)
        per_sample = F.cross_entropy(logits.float(), y, reduction="none")
        loss = (per_sample * weights[g]).mean() if weights is not None else per_sample.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch stubs leave backward untyped
        optimizer.step()
        loss_sum += loss.detach() * len(y)
        seen += len(y)
        if step == total_steps or step % 5 == 0:  # .item() syncs a GPU: only at emission points
            value = float(loss.detach())
            state.recent_losses = (state.recent_losses + [value])[-200:]
            ctx.progress(
                epoch=epoch,
                total_epochs=total_epochs,
                step=step,
                total_steps=total_steps,
                started=started,
                loss=value,
                recent=tuple(state.recent_losses),
            )
    return float(loss_sum) / max(1, seen)


@torch.no_grad()
def _loss_on(ctx: StageContext, model: nn.Module, split: str) -> float:
    from labconsole.engine.pipeline import ensure_cache

    if split not in ensure_dataset(ctx).splits:
        return 0.0
    cache = ensure_cache(ctx, split)
    model.eval()
    total = torch.zeros((), device=ctx.device)
    with autocast_for(ctx.device):
        for x, y, _ in cache.batches(512):
            total += F.cross_entropy(model(x).float(), y, reduction="sum")
    return float(total) / max(1, len(cache))


def _load_best(ctx: StageContext, model: nn.Module) -> None:
    from safetensors.torch import load_file

    best = ctx.run.checkpoints / "best.safetensors"
    if best.exists():
        model.load_state_dict(load_file(str(best), device=str(ctx.device)))
