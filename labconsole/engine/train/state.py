"""Resumable training state: everything needed to continue after the last finished epoch."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labconsole.engine.runs import RunDir, atomic_write_bytes


@dataclass
class TrainState:
    epoch: int = 0
    best_wga: float | None = None
    best_epoch: int | None = None
    best_splits: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    recent_losses: list[float] = field(default_factory=list)
    # Fine-tuning's epoch 0: the starting model's metrics (empty until evaluated).
    start_splits: dict[str, Any] = field(default_factory=dict)


def _path(run: RunDir, stage: str) -> Path:
    return run.checkpoints / f"{stage}-resume.pt"


def save_train_state(
    run: RunDir,
    stage: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
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
            "state": asdict(state),
        },
        buffer,
    )
    atomic_write_bytes(_path(run, stage), buffer.getvalue())


def load_train_state(
    run: RunDir,
    stage: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
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
    return TrainState(**saved["state"])
