"""GradCAM (Selvaraju et al. 2017) for Paper A's Figure 10: where the ERM model and the
fine-tuned model look, side by side, for a few images of every group.

Written with hooks rather than a dependency: one forward hook keeps the target layer's output
inside a context manager that always removes it, and ``torch.autograd.grad`` takes the gradient
of the chosen output dimension with respect to that output. ViT layers give tokens
``[B, N, D]``: the prefix (class) tokens are dropped and the rest reshaped to the patch grid.

The stage writes ``artifacts/gradcam.json`` (layer, models, per-image labels) and
``artifacts/gradcam.npz`` (images and maps); ``labconsole.report.figures_gradcam`` draws the figure.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labconsole.engine.context import StageContext
from labconsole.engine.events import ArtifactWritten
from labconsole.engine.pipeline import ensure_cache, ensure_dataset
from labconsole.engine.records import GradcamSection
from labconsole.engine.runs import atomic_write_bytes
from labconsole.errors import PresetError, UserError

PAPER_LAYER = "layer4.2.conv3"  # Paper A §2.2.4 (ResNet-50)
# The engine writes the maps; the report draws the figure (images, then one overlay per model).
GRADCAM_JSON = "artifacts/gradcam.json"
GRADCAM_NPZ = "artifacts/gradcam.npz"


def default_layer(model: nn.Module) -> str:
    """Paper A's layer when the model has it; else the last conv (CNNs) or the last block's
    first norm (ViTs, where the class token has not yet mixed everything)."""
    names = dict(model.named_modules())
    if PAPER_LAYER in names:
        return PAPER_LAYER
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, nn.Sequential) and len(blocks) and hasattr(blocks[-1], "norm1"):
        return f"blocks.{len(blocks) - 1}.norm1"
    # Shortcut (downsample) convs are side branches; the explained features leave the main path.
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and "downsample" not in name]
    if not convs:
        raise UserError("finetune.gradcam.layer: this model has no conv layer; name a layer explicitly")
    return str(convs[-1])


@contextmanager
def layer_output(model: nn.Module, layer: str) -> Iterator[dict[str, torch.Tensor]]:
    modules = dict(model.named_modules())
    if layer not in modules:
        raise UserError(f"finetune.gradcam.layer = {layer!r}: no such module (e.g. {default_layer(model)!r})")
    store: dict[str, torch.Tensor] = {}
    handle = modules[layer].register_forward_hook(lambda _m, _i, out: store.__setitem__("out", out))
    try:
        yield store
    finally:
        handle.remove()


def tokens_to_grid(tokens: torch.Tensor, prefix: int) -> torch.Tensor:
    """[B, prefix + h*w, D] → [B, D, h, w]."""
    patches = tokens[:, prefix:]
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1]:
        raise UserError(f"cannot reshape {patches.shape[1]} tokens into a square patch grid")
    return patches.transpose(1, 2).reshape(tokens.shape[0], -1, side, side)


def gradcam(model: nn.Module, x: torch.Tensor, layer: str, output_index: int = 0) -> torch.Tensor:
    """Heat maps [B, H, W] in [0, 1] (each map divided by its maximum)."""
    was_training = model.training
    model.eval()
    try:
        with layer_output(model, layer) as store, torch.enable_grad():
            out = model(x)
            if not 0 <= output_index < out.shape[1]:
                raise UserError(f"finetune.gradcam.output_index = {output_index}: the model has {out.shape[1]} outputs")
            activation = store["out"]
            grad = torch.autograd.grad(out[:, output_index].sum(), activation)[0]
    finally:
        model.train(was_training)
    if activation.dim() == 3:  # ViT tokens
        prefix = int(getattr(model, "num_prefix_tokens", 1))
        activation, grad = tokens_to_grid(activation, prefix), tokens_to_grid(grad, prefix)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12).view(-1, 1, 1)
    return (cam / peak).detach()


def pick_examples(g: torch.Tensor, num_groups: int, per_group: int, seed: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    chosen: list[int] = []
    for group in range(num_groups):
        members = torch.nonzero(g.cpu() == group).flatten()
        chosen += members[torch.randperm(len(members), generator=generator)[:per_group]].tolist()
    return chosen


def gradcam_arrays(images: torch.Tensor, maps: dict[str, torch.Tensor]) -> bytes:
    """The NPZ the report draws Figure 10 from: ``images`` uint8 [N, C, H, W] as shown to the
    models (before normalisation) and ``cams`` float16 [models, N, H, W] in [0, 1], in the order of
    ``maps`` (the order is recorded in ``gradcam.json``)."""
    pictures = images.detach().cpu()
    if pictures.dtype != torch.uint8:
        pictures = (pictures.float().clamp(0, 1) * 255).round().to(torch.uint8)
    cams = torch.stack([m.detach().float().cpu() for m in maps.values()]).to(torch.float16)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=pictures.numpy(), cams=cams.numpy())
    return buffer.getvalue()


def run_gradcam_stage(ctx: StageContext) -> GradcamSection:
    from labconsole.engine.train.dfr import base_checkpoint
    from labconsole.engine.train.start import load_model_from

    cfg = ctx.preset.finetune.gradcam
    bundle = ensure_dataset(ctx)
    tuned_path = ctx.run.checkpoints / "finetune-best.safetensors"
    if not tuned_path.exists():
        raise PresetError(
            'stage `gradcam` compares ERM with the fine-tuned model: list "finetune" before it in `stages`'
        )
    erm_path, erm_source = base_checkpoint(ctx)
    if cfg.split not in bundle.splits:
        raise UserError(f"finetune.gradcam.split = {cfg.split!r}: the dataset has {', '.join(bundle.splits)}")
    cache = ensure_cache(ctx, cfg.split)
    index = pick_examples(cache.g, bundle.groups.num_groups, cfg.per_group, ctx.preset.seed)
    idx = torch.tensor(index, device=cache.images.device)
    raw = cache.images[idx]
    x = cache.normalize(raw)
    models = {"ERM": load_model_from(ctx, erm_path), "fine-tuned": load_model_from(ctx, tuned_path)}
    layer = cfg.layer or default_layer(models["ERM"])
    maps, predictions = {}, {}
    for name, model in models.items():
        maps[name] = gradcam(model, x, layer, cfg.output_index)
        with torch.no_grad():
            model.eval()
            predictions[name] = model(x).argmax(1).tolist()
    groups = cache.g[idx.to(cache.g.device)].tolist()
    labels = [
        f"{bundle.groups.group_names[gi]}\nERM→{bundle.groups.class_names[pe]}, FT→{bundle.groups.class_names[pf]}"
        for gi, pe, pf in zip(groups, predictions["ERM"], predictions["fine-tuned"])
    ]
    atomic_write_bytes(ctx.run.path / GRADCAM_NPZ, gradcam_arrays(raw, maps))
    group_names = [bundle.groups.group_names[gi] for gi in groups]
    result: dict[str, object] = {  # gradcam.json: what the report draws the panels with
        "layer": layer,
        "output_index": cfg.output_index,
        "split": cfg.split,
        "examples": index,
        "erm": erm_source,
        "groups": group_names,
        "predictions": predictions,
        "models": list(maps),
        "labels": labels,
        "arrays": GRADCAM_NPZ,
    }
    ctx.run.write_json(GRADCAM_JSON, result)
    for name, relative in (("gradcam", GRADCAM_JSON), ("gradcam_arrays", GRADCAM_NPZ)):
        ctx.emit(
            ArtifactWritten(
                run_id=ctx.run_id,
                name=name,
                path=str(ctx.run.path / relative),
                description=f"GradCAM at {layer}, output {cfg.output_index}: ERM vs fine-tuned",
            )
        )
    # The examples, the ERM's source and the predictions are kept beyond the record's fields.
    return GradcamSection(
        layer=layer,
        output_index=cfg.output_index,
        split=cfg.split,
        examples=index,
        erm=erm_source,
        groups=group_names,
        predictions=predictions,
        models=list(maps),
        arrays=GRADCAM_NPZ,
        artifacts=[GRADCAM_JSON, GRADCAM_NPZ],
    )
