"""Data deletion by incremental retraining (Paper B App. C): keep training the model on the
training set minus the spurious examples, with its own learning rate and epoch count, and compare
spurious scores before and after. A model retrained from scratch without them is the reference."""

from __future__ import annotations

import torch
from torch import nn

from labconsole.engine.rare.training import EpochHook, Recipe, train_classifier


def without_rows(n: int, rows: torch.Tensor, device: torch.device) -> torch.Tensor:
    keep = torch.ones(n, dtype=torch.bool)
    keep[rows.cpu()] = False
    return torch.nonzero(keep).flatten().to(device)


def incremental_retrain(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    deleted: torch.Tensor,
    recipe: Recipe,
    *,
    epochs: int,
    lr: float,
    seed: int,
    on_epoch: EpochHook | None = None,
) -> list[float]:
    """Continue training ``model`` in place on the training data without rows ``deleted``.

    A fresh optimizer at constant ``lr`` (no LR drops) for ``epochs`` epochs; other recipe
    settings (optimizer, batch size, regularisation) are kept.
    """
    keep = without_rows(len(y_train), deleted, x_train.device)
    retrain = recipe.with_(lr=lr, epochs=epochs, lr_milestones=())
    return train_classifier(model, x_train[keep], y_train[keep], retrain, seed=seed + 7_777, on_epoch=on_epoch)
