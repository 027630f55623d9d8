"""Where a stage that continues from ERM starts: the kick-in checkpoint, the ERM-selected model
("before"), and loading either into a fresh model with a clear error when it does not fit.

Order: the ERM stage of this run (``checkpoints/epoch_<kick-in>`` or ``best``), else
``model.checkpoint`` (a run directory → its ``epoch_<kick-in>`` / ``best``; a file → that file).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from labconsole.engine.context import StageContext
from labconsole.engine.pipeline import ensure_dataset, evaluate_metrics
from labconsole.engine.records import FinetuneBefore
from labconsole.errors import CheckpointError, PresetError


def _kept_epochs(folder: Path) -> list[int]:
    return sorted(
        int(p.stem.split("_")[1]) for p in folder.glob("epoch_*.safetensors") if p.stem.split("_")[1].isdigit()
    )


def erm_trained_in_this_run(ctx: StageContext) -> bool:
    """True when this run trained the ERM model itself: stage ``erm``, or stage ``model`` with no
    ``model.checkpoint`` (it then trains one by ERM)."""
    stages = ctx.preset.stages
    trained = "erm" in stages or ("model" in stages and not ctx.preset.model.checkpoint)
    return trained and (ctx.run.checkpoints / "best.safetensors").exists()


def resolve_start_checkpoint(ctx: StageContext) -> tuple[Path, str]:
    """(checkpoint file, a sentence saying which one and why)."""
    from labconsole.engine.models.checkpoint import resolve_checkpoint

    kick_in = ctx.preset.finetune.kick_in_epoch
    if erm_trained_in_this_run(ctx):
        if not kick_in:
            return ctx.run.checkpoints / "best.safetensors", "the ERM model selected by validation WGA"
        path = ctx.run.checkpoints / f"epoch_{kick_in:03d}.safetensors"
        if not path.exists() and ctx.preset.smoke_profile:
            ctx.log(
                f"smoke profile: the short ERM has no epoch {kick_in}; starting from its selected model",
                level="warning",
            )
            return ctx.run.checkpoints / "best.safetensors", "the ERM model selected by validation WGA (smoke)"
        if not path.exists():
            kept = _kept_epochs(ctx.run.checkpoints)
            raise PresetError(
                f"finetune.kick_in_epoch = {kick_in}: this run's ERM kept no checkpoint for epoch {kick_in} "
                f"(kept: {kept or 'none'}). Add {kick_in} to erm.keep_epochs (with erm.epochs ≥ {kick_in}), "
                "or set finetune.kick_in_epoch = 0 to start from the selected ERM model"
            )
        return path, f"ERM epoch {kick_in} (kick-in)"
    given = ctx.preset.model.checkpoint
    if not given:
        raise PresetError(
            f'stage `{ctx.stage or "finetune"}` needs a model to start from: list "erm" before it in `stages`, '
            "or give one with --set model.checkpoint=RUN_DIR_OR_FILE"
        )
    folder = Path(given).expanduser()
    if folder.is_dir():
        if kick_in:
            for candidate in (
                folder / "checkpoints" / f"epoch_{kick_in:03d}.safetensors",
                folder / f"epoch_{kick_in:03d}.safetensors",
            ):
                if candidate.exists():
                    return candidate, f"ERM epoch {kick_in} (kick-in) of {folder}"
            kept = _kept_epochs(folder / "checkpoints") + _kept_epochs(folder)
            raise CheckpointError(
                f"model.checkpoint = {given}: no epoch_{kick_in:03d}.safetensors for finetune.kick_in_epoch = "
                f"{kick_in} (kept epochs: {kept or 'none'}); set finetune.kick_in_epoch = 0 to start from its "
                "best checkpoint"
            )
        return resolve_checkpoint(folder, "best"), f"the selected model of {folder}"
    return resolve_checkpoint(folder), "model.checkpoint as given (kick-in epoch not applied to a file)"


def erm_selected_checkpoint(ctx: StageContext, start: Path) -> tuple[Path, str]:
    """The ERM model selected by validation WGA — what "before" means in a before/after."""
    from labconsole.engine.models.checkpoint import resolve_checkpoint

    if erm_trained_in_this_run(ctx):
        return ctx.run.checkpoints / "best.safetensors", "ERM of this run, selected by val WGA"
    given = ctx.preset.model.checkpoint
    if given and Path(given).expanduser().is_dir():
        return resolve_checkpoint(Path(given).expanduser(), "best"), f"selected model of {given}"
    return start, "the starting checkpoint"


def load_model_from(ctx: StageContext, path: Path) -> nn.Module:
    """A model built per the preset with the weights of ``path``; a checkpoint made for another
    backbone, class count, dataset or input shape is refused with one clear message."""
    from labconsole.engine.models.checkpoint import fit_state_dict, load_state_dict_file, read_sidecar
    from labconsole.engine.models.factory import backbone_info, create_model

    bundle = ensure_dataset(ctx)
    m = ctx.preset.model
    sidecar = read_sidecar(path)
    expected: dict[str, object] = {
        "backbone": m.backbone,
        "num_classes": bundle.groups.num_classes,
        "dataset": bundle.name,
        "in_channels": bundle.channels,
    }
    if backbone_info(m.backbone).family == "small":
        expected["width"] = m.width
    wrong = [
        f"{k}: checkpoint has {sidecar[k]!r}, this preset has {v!r}"
        for k, v in expected.items()
        if k in sidecar and sidecar[k] != v
    ]
    if wrong:
        raise CheckpointError(f"{path} does not fit this run ({'; '.join(wrong)})")
    model = create_model(
        m.backbone, bundle.groups.num_classes, in_channels=bundle.channels, image_size=bundle.image_size, width=m.width
    )
    fit_state_dict(model, load_state_dict_file(path, allow_pickle=m.allow_pickle), source=str(path), skip_head=False)
    return model.to(ctx.device)


def evaluate_before(ctx: StageContext, start: Path, start_model: nn.Module) -> FinetuneBefore:
    """Val/test metrics of the ERM-selected model (the "before" of a before/after)."""
    path, source = erm_selected_checkpoint(ctx, start)
    model = start_model if path == start else load_model_from(ctx, path)
    return FinetuneBefore(source=f"{source} ({path})", splits=evaluate_metrics(ctx, model, ("val", "test")))
