"""Checks of a preset's stage settings that need the model's shape or the dataset's group
names but no data: run before the first epoch, so a wrong ``neurons.top_k`` or group name fails
in a second instead of after ERM has trained for minutes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from labconsole.engine.data.groups import GroupInfo
from labconsole.errors import PresetError, UserError

if TYPE_CHECKING:
    from labconsole.presets import Preset

# Stages that rank or zero neurons of the model (``[neurons]`` settings).
NEURON_STAGES = ("neurons", "tracing", "overlap")


def known_groups(dataset: str) -> GroupInfo | None:
    """The groups of ``dataset`` as its loader defines them; None where they come from the files
    (torchvision folders name their classes on disk)."""
    if dataset == "synthetic-waterbirds":
        from labconsole.engine.data.synthetic import SYNTHETIC_GROUPS

        return SYNTHETIC_GROUPS
    if dataset in ("digits", "digits-color"):
        from labconsole.engine.data.digits import DIGIT_GROUPS

        return DIGIT_GROUPS
    if dataset in ("waterbirds", "celeba"):
        from labconsole.engine.data.groups import CELEBA_GROUPS, WATERBIRDS_GROUPS

        return WATERBIRDS_GROUPS if dataset == "waterbirds" else CELEBA_GROUPS
    return None


def layer_sizes(preset: Preset, num_classes: int) -> list[tuple[str, int]]:
    """(layer, neurons) of every eligible layer of the preset's model, built without weights."""
    from labconsole.engine.models.factory import create_model
    from labconsole.engine.stage1.neurons import eligible_layers

    m = preset.model

    def build() -> torch.nn.Module:
        return create_model(m.backbone, num_classes, image_size=preset.data.image_size, width=m.width)

    try:
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            model = build()
    except (RuntimeError, NotImplementedError):
        model = build()
    cfg = preset.neurons
    return [
        (layer.name, layer.n_neurons) for layer in eligible_layers(model, cfg.include, cfg.exclude, cfg.include_head)
    ]


def check_neuron_settings(preset: Preset) -> None:
    """``neurons.groups``, ``top_k``, ``random_k`` and ``tracing_k`` against the dataset's groups
    and the model's layers; PresetError naming the key and what the model has."""
    if not any(stage in NEURON_STAGES for stage in preset.stages):
        return
    cfg = preset.neurons
    groups = known_groups(preset.data.dataset)
    if groups is not None:
        for name in cfg.groups:
            try:
                groups.resolve(name)
            except UserError as exc:
                raise PresetError(f"neurons.groups: {exc}") from None
    num_classes = groups.num_classes if groups is not None else 2
    sizes = layer_sizes(preset, num_classes)
    total = sum(n for _, n in sizes)
    where = f"{preset.model.backbone} has {total} eligible neurons in {len(sizes)} layers"
    for key, values in (("neurons.top_k", cfg.top_k), ("neurons.random_k", cfg.random_k)):
        too_many = [k for k in values if k > total]
        if too_many:
            raise PresetError(f"{key} = {list(values)}: {max(too_many)} is more neurons than the model has ({where})")
    if "tracing" in preset.stages and not any(n >= cfg.tracing_k for _, n in sizes):
        largest = max(n for _, n in sizes)
        raise PresetError(
            f"neurons.tracing_k = {cfg.tracing_k}: no layer has that many neurons (largest has {largest}; {where})"
        )
