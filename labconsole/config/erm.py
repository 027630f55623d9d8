"""[erm]: Stage 0 training (SPEC §3). Paper defaults are Adam 1e-4, batch 256, 100 epochs;
the embedded CPU defaults are sized to run in about a minute."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from labconsole.config.base import Section
from labconsole.config.vocab import Optimizer


class ErmConfig(Section):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: Optimizer = "adam"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    # ReduceLROnPlateau on validation loss (SPEC §3: factor 0.5, patience 3).
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    plateau_patience: int = Field(3, ge=0)
    selection: Literal["best-val-wga", "last"] = "best-val-wga"
    # Group-balanced ERM baseline: reweight the loss or subsample majority groups.
    balance: Literal["none", "reweight", "subsample"] = "none"
    # Train-split group accuracy every epoch (the memorization curve). When off, the train split
    # is still evaluated once, on the selected checkpoint, so the summary always has it.
    eval_train: bool = True
    save_every: int = Field(0, ge=0, description="also keep epoch_<n> checkpoints every n epochs")
    keep_epochs: tuple[int, ...] = Field((), description="epochs whose checkpoint is kept (kick-in)")

    def smoke(self) -> ErmConfig:
        return self.model_copy(
            update={
                "epochs": min(self.epochs, 2),
                "batch_size": min(self.batch_size, 64),
                "keep_epochs": tuple(e for e in self.keep_epochs if e <= 2),
            }
        )
