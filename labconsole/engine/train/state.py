"""Resumable training state: everything needed to continue after the last finished epoch."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Protocol

import torch
from pydantic import BaseModel, Field, JsonValue
from torch import nn

from labconsole.engine.records import Record, Splits
from labconsole.engine.runs import RunDir, atomic_write_bytes


class EpochLog(Record):
    """One finished epoch as training remembers it: ERM's losses; fine-tuning's loss, the mask
    its auxiliary model used (plain values) and its WGA per split."""

    epoch: int
    train_loss: float | None = None
    val_loss: float | None = None
    mask: dict[str, JsonValue] = Field(default_factory=dict)
    train_wga: float | None = None
    val_wga: float | None = None
    test_wga: float | None = None


class TrainState(BaseModel):
    """What a stage needs to go on after its last finished epoch. The resume file keeps it as
    plain JSON values (``model_dump``), so it loads whatever classes the engine has by then."""

    epoch: int = 0
    best_wga: float | None = None
    best_epoch: int | None = None
    best_splits: Splits = Field(default_factory=dict)
    history: list[EpochLog] = Field(default_factory=list)
    recent_losses: list[float] = Field(default_factory=list)
    # Fine-tuning's epoch 0: the starting model's metrics (empty until evaluated).
    start_splits: Splits = Field(default_factory=dict)


class Scheduler(Protocol):
    """A learning-rate scheduler as far as the resume file needs one."""

    def state_dict(self) -> dict[str, object]: ...

    def load_state_dict(self, state_dict: dict[str, object]) -> None: ...


def _path(run: RunDir, stage: str) -> Path:
    return run.checkpoints / f"{stage}-resume.pt"


def save_train_state(
    run: RunDir,
    stage: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Scheduler | None,
    generator: torch.Generator,
    state: TrainState,
) -> None:
    buffer = io.BytesIO()
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "state": state.model_dump(mode="json"),
        },
        buffer,
    )
    atomic_write_bytes(_path(run, stage), buffer.getvalue())


def load_train_state(
    run: RunDir,
    stage: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Scheduler | None,
    generator: torch.Generator,
) -> TrainState | None:
    path = _path(run, stage)
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    if scheduler is not None and saved.get("scheduler"):
        scheduler.load_state_dict(saved["scheduler"])
    generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    return TrainState.model_validate(saved["state"])
