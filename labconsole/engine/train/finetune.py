"""Stage II: pruned-contrastive fine-tuning (Paper A §2.2, SPEC §5) and its authors'-code
variant (SPEC §7).

Starts from the ERM checkpoint at the kick-in epoch. At each epoch start the auxiliary model is
rebuilt from the target's current weights: the same parameters with the top p % critical
neurons masked (``critical_mask``), never a copy. Each step feeds two augmented views,
``target(x1)`` and ``aux(x2)``, and minimises NT-Xent + λ·MSE (or λ·CE); the step and the
projection head are in ``finetune_step``. Every epoch emits val/test group accuracies, keeps
``finetune-last`` (and ``finetune-best`` by validation WGA) plus ``finetune-resume.pt``, so a
cancelled run resumes after its last finished epoch.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import JsonValue
from torch import nn

from labconsole.config.finetune import FinetuneConfig
from labconsole.engine.context import Cancelled, StageContext
from labconsole.engine.data.cache import TensorCache
from labconsole.engine.events import EpochResult, StageStarted
from labconsole.engine.models.checkpoint import save_checkpoint
from labconsole.engine.models.factory import get_head
from labconsole.engine.pipeline import autocast_for, ensure_cache, ensure_dataset, evaluate_metrics, model_meta
from labconsole.engine.records import FinetuneControl, FinetuneSection, Selection
from labconsole.engine.stage1.neurons import Layer, eligible_layers
from labconsole.engine.train.critical_mask import build_epoch_mask, minority_group_indices
from labconsole.engine.train.finetune_step import FinetuneModules, FinetuneStep, ProjectionHead
from labconsole.engine.train.finetune_summary import (
    SELECTION_TEXT,
    curve_point,
    difference,
    finetune_summary,
    format_control_table,
    method_text,
    split_wga,
)
from labconsole.engine.train.masking import WeightMask
from labconsole.engine.train.start import evaluate_before, load_model_from, resolve_start_checkpoint
from labconsole.engine.train.state import EpochLog, TrainState, load_train_state, save_train_state
from labconsole.engine.train.views import ViewBatches

STAGE = "finetune"


def check_finetune_inputs(ctx: StageContext) -> None:
    """Refuse what cannot work before any training: minority groups without group labels."""
    cfg = ctx.preset.finetune
    if (
        cfg.mask == "critical-neurons"
        and cfg.criterion in ("gradient", "combined")
        and cfg.gradient_source == "minority-groups"
    ):
        minority_group_indices(ensure_dataset(ctx))  # raises a UserError naming the key


def run_finetune_stage(ctx: StageContext) -> FinetuneSection:
    cfg = ctx.preset.finetune
    bundle = ensure_dataset(ctx)
    check_finetune_inputs(ctx)
    start_path, start_note = resolve_start_checkpoint(ctx)
    ctx.log(f"fine-tuning starts from {start_path} ({start_note})")
    model = load_model_from(ctx, start_path)
    device = ctx.device
    torch.manual_seed(ctx.preset.seed)
    before = evaluate_before(ctx, start_path, model)

    projection = None
    if cfg.contrast_on == "features":
        projection = ProjectionHead(get_head(model).in_features, cfg.projection_dim).to(device)
    modules = FinetuneModules(model, projection)
    optimizer = torch.optim.Adam(modules.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
    )
    batches = ViewBatches(
        bundle,
        bundle.split("train"),
        batch_size=cfg.batch_size,
        device=device,
        views=cfg.views,
        seed=ctx.preset.seed,
        num_workers=ctx.preset.data.num_workers,
    )
    layers = eligible_layers(model, cfg.include, cfg.exclude)
    step = FinetuneStep(model, cfg, device, projection)
    meta = {**model_meta(ctx, bundle), "stage": STAGE, "start": str(start_path)}
    selection = SELECTION_TEXT[cfg.selection]

    state = load_train_state(ctx.run, STAGE, modules, optimizer, scheduler, batches.generator) or TrainState()
    if state.epoch:
        ctx.log(f"resuming fine-tuning after epoch {state.epoch} (best val WGA at epoch {state.best_epoch})")
    ctx.emit(StageStarted(run_id=ctx.run_id, stage=STAGE, total_epochs=cfg.epochs))
    eval_splits = ("train", "val", "test") if cfg.eval_train else ("val", "test")
    if not state.start_splits:
        _record_start(ctx, cfg, model, state, eval_splits, meta, selection)
    started = time.monotonic()
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        if cfg.contrastive_weight == 0:
            mask = WeightMask(keep={}, kind="none", description="nothing (contrastive_weight = 0)")
            mask_info: dict[str, JsonValue] = {}
        else:
            mask, mask_info = _epoch_mask(ctx, model, layers, epoch)
            ctx.log(f"epoch {epoch}: auxiliary model masks {mask.description}")
        step.set_mask(mask)
        train_loss = _train_epoch(ctx, step, optimizer, batches, epoch, started, state)
        splits = evaluate_metrics(ctx, model, eval_splits)
        scheduler.step(validation_loss(ctx, model))
        wga = split_wga(splits, "val")
        improved = cfg.selection == "last" or (wga is not None and (state.best_wga is None or wga > state.best_wga))
        if improved:
            state.best_wga, state.best_epoch, state.best_splits = wga, epoch, splits
            save_checkpoint(ctx.run.checkpoints / "finetune-best", model, {**meta, "epoch": epoch, "val_wga": wga})
        save_checkpoint(ctx.run.checkpoints / "finetune-last", model, {**meta, "epoch": epoch})
        state.epoch = epoch
        mask_used = {**mask.summary(), **mask_info}  # plain values: validating checks they are JSON
        log = {"epoch": epoch, "train_loss": train_loss, "mask": mask_used, **curve_point(splits)}
        state.history.append(EpochLog.model_validate(log))
        save_train_state(ctx.run, STAGE, modules, optimizer, scheduler, batches.generator, state)
        ctx.emit(
            EpochResult(
                run_id=ctx.run_id,
                stage=STAGE,
                epoch=epoch,
                total_epochs=cfg.epochs,
                splits=splits,
                train_loss=train_loss,
                lr=optimizer.param_groups[0]["lr"],
                is_best=improved,
                best_epoch=state.best_epoch,
                selection=selection,
            )
        )
    best = ctx.run.checkpoints / "finetune-best.safetensors"
    if best.exists():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(best), device=str(device)))
    ctx.state["model"] = model
    ctx.state["finetuned_checkpoint"] = best
    summary = finetune_summary(ctx, cfg, state, before, start_path, start_note, selection)
    if summary.mask_realised:
        ctx.log(f"auxiliary mask: {summary.mask_realised}")
    if summary.warning:  # every console and log shows it, not only the report
        ctx.log(summary.warning, level="warning")
    if cfg.control == "continued-erm":
        _attach_control(ctx, cfg, start_path, summary)
    return summary


def _attach_control(ctx: StageContext, cfg: FinetuneConfig, start_path: Path, method: FinetuneSection) -> None:
    """Train the control and put it, and method − control, into the method's section."""
    control = _continued_erm_control(ctx, cfg, start_path, method)
    method.control = control
    method.method_minus_control = {
        s: difference(method.wga_after.get(s), control.wga_after.get(s)) for s in ("val", "test")
    }
    ctx.log("Stage II against its control\n" + format_control_table(method))


def _continued_erm_control(
    ctx: StageContext, cfg: FinetuneConfig, start_path: Path, method: FinetuneSection
) -> FinetuneControl:
    """The control of a fine-tuning run: continued ERM from the same start with the same epochs,
    views, BatchNorm mode, optimiser, schedule, seed and selection rule, the supervised term
    alone (contrastive_weight = 0). Not resumable on its own: a resumed run computes it again."""
    control_cfg = cfg.model_copy(update={"contrastive_weight": 0.0, "control": "none"})
    bundle = ensure_dataset(ctx)
    model = load_model_from(ctx, start_path)
    torch.manual_seed(ctx.preset.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
    )
    batches = ViewBatches(
        bundle,
        bundle.split("train"),
        batch_size=cfg.batch_size,
        device=ctx.device,
        views=cfg.views,
        seed=ctx.preset.seed,
        num_workers=ctx.preset.data.num_workers,
    )
    step = FinetuneStep(model, control_cfg, ctx.device)
    step.set_mask(WeightMask(keep={}, kind="none", description="nothing (continued ERM)"))
    state = TrainState(start_splits=method.start.splits if method.start is not None else {})
    start_val = split_wga(state.start_splits, "val")
    if cfg.selection == "best-val-wga-or-start":
        state.best_wga, state.best_epoch, state.best_splits = start_val, 0, state.start_splits
    started = time.monotonic()
    curve: list[dict[str, JsonValue]] = [{"epoch": 0, **curve_point(state.start_splits)}]
    for epoch in range(1, cfg.epochs + 1):
        ctx.log(f"control (continued ERM) epoch {epoch}/{cfg.epochs}")
        train_loss = _train_epoch(ctx, step, optimizer, batches, epoch, started, state)
        splits = evaluate_metrics(ctx, model, ("val", "test"))
        scheduler.step(validation_loss(ctx, model))
        wga = split_wga(splits, "val")
        if cfg.selection == "last" or (wga is not None and (state.best_wga is None or wga > state.best_wga)):
            state.best_wga, state.best_epoch, state.best_splits = wga, epoch, splits
        curve.append({"epoch": epoch, "train_loss": train_loss, **curve_point(splits)})
    return FinetuneControl(
        method="continued ERM: " + method_text(control_cfg),
        selection=Selection(rule=SELECTION_TEXT[cfg.selection], epoch=state.best_epoch, val_wga=state.best_wga),
        wga_after={split: split_wga(state.best_splits, split) for split in ("val", "test")},
        history=curve,
    )


def _record_start(
    ctx: StageContext,
    cfg: FinetuneConfig,
    model: nn.Module,
    state: TrainState,
    eval_splits: tuple[str, ...],
    meta: dict[str, object],
    selection: str,
) -> None:
    """Epoch 0: the starting model, evaluated like every fine-tuning epoch and recorded, so
    curves start where fine-tuning starts and "best" can be compared with (or be) the start."""
    splits = evaluate_metrics(ctx, model, eval_splits)
    state.start_splits = splits
    wga = split_wga(splits, "val")
    keep_start = cfg.selection == "best-val-wga-or-start"
    if keep_start:
        state.best_wga, state.best_epoch, state.best_splits = wga, 0, splits
        save_checkpoint(ctx.run.checkpoints / "finetune-best", model, {**meta, "epoch": 0, "val_wga": wga})
    ctx.emit(
        EpochResult(
            run_id=ctx.run_id,
            stage=STAGE,
            epoch=0,
            total_epochs=cfg.epochs,
            splits=splits,
            train_loss=None,
            lr=None,
            is_best=keep_start,
            best_epoch=0 if keep_start else None,
            selection=selection,
        )
    )


def set_batchnorm_mode(model: nn.Module, mode: str) -> None:
    """``frozen``: every BatchNorm in eval mode (running statistics used, not updated) while the
    rest of the model trains; ``train``: left as ``model.train()`` set it."""
    if mode == "frozen":
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def _epoch_mask(
    ctx: StageContext, model: nn.Module, layers: list[Layer], epoch: int
) -> tuple[WeightMask, dict[str, JsonValue]]:
    cfg = ctx.preset.finetune
    needs_data = cfg.mask == "critical-neurons" and cfg.criterion in ("gradient", "combined")
    cache = _gradient_cache(ctx, epoch) if needs_data else None
    # A different, reproducible draw of the 128 examples every epoch.
    seed = ctx.preset.seed * 100_003 + epoch
    return build_epoch_mask(model, layers, cfg, cache=cache, bundle=ensure_dataset(ctx), seed=seed)


def _gradient_cache(ctx: StageContext, epoch: int) -> TensorCache:
    """The training examples searched for the worst CE: all of them, or a random pool."""
    cfg = ctx.preset.finetune
    bundle = ensure_dataset(ctx)
    train = bundle.split("train")
    if not cfg.gradient_pool or cfg.gradient_pool >= len(train):
        return ensure_cache(ctx, "train")
    generator = torch.Generator().manual_seed(ctx.preset.seed * 7919 + epoch)
    index = torch.randperm(len(train), generator=generator)[: cfg.gradient_pool]
    return TensorCache.from_split(train.subset(torch.sort(index).values), bundle, ctx.device)


def _train_epoch(
    ctx: StageContext,
    step: FinetuneStep,
    optimizer: torch.optim.Optimizer,
    batches: ViewBatches,
    epoch: int,
    started: float,
    state: TrainState,
) -> float:
    cfg = ctx.preset.finetune
    step.model.train()
    set_batchnorm_mode(step.model, cfg.batchnorm)
    if step.projection is not None:
        step.projection.train()
    total_steps = batches.num_batches()
    loss_sum = torch.zeros((), device=ctx.device)
    seen = 0
    for index, (x1, x2, y, _, _) in enumerate(batches.epoch(), start=1):
        if ctx.cancel.is_set():
            raise Cancelled()
        if ctx.device.type == "cuda":
            x1 = x1.contiguous(memory_format=torch.channels_last)
            x2 = x2.contiguous(memory_format=torch.channels_last)
        loss = step.step(optimizer, x1, x2, y)
        loss_sum += loss * len(y)
        seen += len(y)
        if index == total_steps or index % 5 == 0:  # .item() syncs a GPU: only at emission points
            value = float(loss)
            state.recent_losses = (state.recent_losses + [value])[-200:]
            ctx.progress(
                epoch=epoch,
                total_epochs=cfg.epochs,
                step=index,
                total_steps=total_steps,
                started=started,
                loss=value,
                recent=tuple(state.recent_losses),
            )
    return float(loss_sum) / max(1, seen)


@torch.no_grad()
def validation_loss(ctx: StageContext, model: nn.Module) -> float:
    """Mean CE of the target on the validation split (the plateau scheduler's signal)."""
    if "val" not in ensure_dataset(ctx).splits:
        return 0.0
    cache = ensure_cache(ctx, "val")
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=ctx.device)
    with autocast_for(ctx.device):
        for x, y, _ in cache.batches(512):
            total += F.cross_entropy(model(x).float(), y, reduction="sum")
    model.train(was_training)
    return float(total) / max(1, len(cache))
