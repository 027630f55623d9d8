"""Shared plumbing of the rare-correlation stages: data as device tensors, one model trained with
progress and cancel checks, artifacts written and announced."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from labconsole.engine.context import StageContext
from labconsole.engine.data.groups import DatasetBundle
from labconsole.engine.data.patterns import Pattern, inject_pattern
from labconsole.engine.events import ArtifactWritten
from labconsole.engine.rare.training import Recipe, build_model, train_classifier
from labconsole.engine.records.base import VersionedRecord
from labconsole.engine.records.sections import StageSection

S = TypeVar("S", bound=StageSection)


@dataclass
class RareData:
    x_train: torch.Tensor  # float [N, C, H, W] in [0, 1], on the device
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    dataset: str
    # Other labelled splits (val), pooled only by membership inference.
    x_extra: list[torch.Tensor] = field(default_factory=list)
    y_extra: list[torch.Tensor] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def as_unit_float(images_u8: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images_u8.to(device).float().div_(255.0)


def rare_data(ctx: StageContext) -> RareData:
    """Train and test splits of the preset's dataset, loaded once per run and kept in ``ctx.state``."""
    cached = ctx.state.get("rare_data")
    if isinstance(cached, RareData):
        return cached
    bundle: DatasetBundle | None = ctx.state.get("dataset")
    if bundle is None:
        from labconsole.engine.data.registry import load_dataset

        bundle = load_dataset(ctx.preset.data)
        ctx.state["dataset"] = bundle
    train, test = bundle.split("train"), bundle.split("test")
    if train.images is None or test.images is None:
        from labconsole.errors import DataError

        raise DataError(
            f"dataset {bundle.name!r} is file-based; the rare-correlation lab needs in-memory images "
            "(digits, digits-color, mnist, fashion-mnist, cifar10)"
        )
    data = RareData(
        x_train=as_unit_float(train.images, ctx.device),
        y_train=train.y.to(ctx.device),
        x_test=as_unit_float(test.images, ctx.device),
        y_test=test.y.to(ctx.device),
        shape=(int(train.images.shape[1]), int(train.images.shape[2]), int(train.images.shape[3])),
        class_names=bundle.groups.class_names,
        dataset=bundle.name,
    )
    for name, split in bundle.splits.items():
        if name not in ("train", "test") and split.images is not None and len(split):
            data.x_extra.append(as_unit_float(split.images, ctx.device))
            data.y_extra.append(split.y.to(ctx.device))
    if ctx.preset.rare.target_class >= data.num_classes:
        from labconsole.errors import UserError

        raise UserError(
            f"rare.target_class = {ctx.preset.rare.target_class}: dataset {bundle.name!r} has classes "
            f"0..{data.num_classes - 1}"
        )
    ctx.state["rare_data"] = data
    return data


@dataclass
class Tracker:
    """Progress over the models a stage trains: Progress.epoch = model number, step = epoch."""

    ctx: StageContext
    total_models: int
    epochs: int
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    losses: list[float] = field(default_factory=list)

    def hook(self, label: str) -> Callable[[int, float], None]:
        model_number = self.done + 1

        def on_epoch(epoch: int, loss: float) -> None:
            self.ctx.check_cancel()
            self.losses.append(loss)
            self.ctx.progress(
                epoch=model_number,
                total_epochs=self.total_models,
                step=epoch,
                total_steps=self.epochs,
                started=self.started,
                loss=loss,
                recent=tuple(self.losses[-200:]),
                message=label,
                force=epoch == 1,  # each model's start gets through the rate limit
            )

        return on_epoch

    def finish_model(self) -> None:
        self.done += 1


def train_model(
    ctx: StageContext,
    data: RareData,
    tracker: Tracker,
    *,
    seed: int,
    recipe: Recipe,
    x: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
    label: str = "",
    backbone: str | None = None,
) -> nn.Module:
    model = build_model(ctx.preset, data.num_classes, data.shape[0], data.shape[1], seed, ctx.device, backbone)
    train_classifier(
        model,
        data.x_train if x is None else x,
        data.y_train if y is None else y,
        recipe,
        seed=seed,
        on_epoch=tracker.hook(label),
    )
    tracker.finish_model()
    return model


def spurious_training_set(
    data: RareData,
    target: int,
    n: int,
    pattern: Pattern,
    seed: int,
    x: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images with n spurious examples, labels, indices of the spurious examples)."""
    x = data.x_train if x is None else x
    y = data.y_train if y is None else y
    images, chosen = inject_pattern(x, y, target, n, pattern, seed)
    return images, y, chosen


def write_artifact(ctx: StageContext, name: str, artifact: VersionedRecord, description: str = "") -> Path:
    """Write ``artifact`` (its record in ``engine/records/rare.py``) to ``artifacts/<name>`` and announce it."""
    path = ctx.run.write_json(f"artifacts/{name}", artifact.to_json())
    ctx.emit(ArtifactWritten(run_id=ctx.run_id, name=name, path=str(path), description=description))
    return path


def seeds_from(base: int, count: int) -> list[int]:
    return [int(base) + i for i in range(count)]


@contextlib.contextmanager
def small_model_threads(ctx: StageContext) -> Iterator[None]:
    """One intra-op thread while MLPs train on the CPU, restored afterwards.

    A 784-256-256-256 MLP on a batch of 128 does too little work per op for thread hand-offs to
    pay: on a busy 2-core machine two threads made training 5-20× slower than one.
    """
    if ctx.device.type != "cpu" or not str(ctx.preset.model.backbone).startswith("mlp"):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def small_model_stage(stage: Callable[[StageContext], S]) -> Callable[[StageContext], S]:
    """``stage`` run under ``small_model_threads``."""

    @functools.wraps(stage)
    def wrapped(ctx: StageContext) -> S:
        with small_model_threads(ctx):
            return stage(ctx)

    return wrapped
