"""Shared pieces a stage needs: the dataset, evaluation caches and the model, each built once
per run and kept in ``ctx.state`` so later stages reuse what earlier stages made."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from labconsole.engine.context import StageContext
from labconsole.engine.data.cache import TensorCache
from labconsole.engine.data.groups import DatasetBundle
from labconsole.engine.evaluate import evaluate_cache
from labconsole.engine.records import Splits


def ensure_dataset(ctx: StageContext) -> DatasetBundle:
    if "dataset" not in ctx.state:
        from labconsole.engine.data.registry import load_dataset
        from labconsole.engine.stage1 import run_data_cache

        ctx.log(f"loading dataset {ctx.preset.data.dataset}")
        ctx.state["dataset"] = load_dataset(ctx.preset.data)
        # Every run keeps its decoded data, so the console reopens any run (ERM-only included)
        # without rebuilding the dataset.
        run_data_cache.write_bundle(ctx.run.path, ctx.preset.data, ctx.state["dataset"])
    bundle = ctx.state["dataset"]
    assert isinstance(bundle, DatasetBundle)
    return bundle


def ensure_cache(ctx: StageContext, split: str) -> TensorCache:
    caches: dict[str, TensorCache] = ctx.state.setdefault("caches", {})
    if split not in caches:
        bundle = ensure_dataset(ctx)
        caches[split] = TensorCache.from_split(bundle.split(split), bundle, ctx.device)
    return caches[split]


def model_meta(ctx: StageContext, bundle: DatasetBundle) -> dict[str, object]:
    """What a checkpoint sidecar records: enough to rebuild the model and to refuse a misfit."""
    m = ctx.preset.model
    return {
        "backbone": m.backbone,
        "num_classes": bundle.groups.num_classes,
        "in_channels": bundle.channels,
        "image_size": bundle.image_size,
        "width": m.width,
        "dataset": bundle.name,
        "class_names": list(bundle.groups.class_names),
        "group_names": list(bundle.groups.group_names),
        "preset": ctx.preset.name,
        "variant": ctx.preset.variant,
    }


def build_model(ctx: StageContext) -> nn.Module:
    """A fresh model per the preset, or the one in ``model.checkpoint`` if given."""
    from labconsole.engine.models.checkpoint import fit_state_dict, load_state_dict_file, resolve_checkpoint
    from labconsole.engine.models.factory import create_model

    bundle = ensure_dataset(ctx)
    m = ctx.preset.model
    model = create_model(
        m.backbone,
        bundle.groups.num_classes,
        in_channels=bundle.channels,
        image_size=bundle.image_size,
        width=m.width,
        weights=m.weights,
        allow_download=m.allow_download,
        allow_pickle=m.allow_pickle,
    )
    if m.checkpoint:
        path = resolve_checkpoint(m.checkpoint)
        _check_sidecar(path, model_meta(ctx, bundle))
        state = load_state_dict_file(path, allow_pickle=m.allow_pickle)
        fit_state_dict(model, state, source=str(path), skip_head=False)
        ctx.log(f"started from checkpoint {path}")
    return model.to(ctx.device)


def _check_sidecar(path: Path, expected: dict[str, object]) -> None:
    from labconsole.engine.models.checkpoint import read_sidecar
    from labconsole.errors import CheckpointError

    meta = read_sidecar(path)
    for key in ("backbone", "num_classes", "dataset"):
        if key in meta and meta[key] != expected[key]:
            raise CheckpointError(f"{path} was made for {key} = {meta[key]!r}, this preset has {expected[key]!r}")


def ensure_model(ctx: StageContext) -> nn.Module:
    """The model of this run: the one an earlier stage left, else built from the preset."""
    if "model" not in ctx.state:
        ctx.state["model"] = build_model(ctx)
    model = ctx.state["model"]
    assert isinstance(model, nn.Module)
    return model


def evaluate_metrics(ctx: StageContext, model: nn.Module, splits: tuple[str, ...] = ("train", "val", "test")) -> Splits:
    """Each of ``splits`` the dataset has, evaluated on its cached tensors."""
    bundle = ensure_dataset(ctx)
    proportions = bundle.train_group_proportions()
    results: Splits = {}
    for split in splits:
        if split in bundle.splits:
            ctx.check_cancel()  # a cancel should not wait for a whole evaluation
            results[split] = evaluate_cache(model, ensure_cache(ctx, split), bundle.groups, proportions)
    return results


def autocast_for(device: torch.device) -> torch.autocast:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)
