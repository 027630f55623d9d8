"""One optimisation step of Stage II (Paper A §2.2, SPEC §5) on a batch of two views: the target
``target(x1)`` against the auxiliary branch ``aux(x2)`` (the same parameters with the epoch's
critical neurons masked), NT-Xent + λ·MSE (or λ·CE), and the projection head it may contrast
through. Shared by the fine-tuning stage, its continued-ERM control and the benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from labconsole.config.finetune import FinetuneConfig
from labconsole.engine.models.factory import get_head
from labconsole.engine.pipeline import autocast_for
from labconsole.engine.train.losses import contrastive_loss, supervised_loss
from labconsole.engine.train.masking import AuxiliaryModel, WeightMask


class ProjectionHead(nn.Module):
    """SimCLR's non-linear projection: Linear → ReLU → Linear(d, projection_dim)."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class FinetuneModules(nn.Module):
    """What the optimizer trains and a resume file stores: the model and the projection head."""

    def __init__(self, model: nn.Module, projection: nn.Module | None) -> None:
        super().__init__()
        self.model = model
        self.projection = projection


@contextmanager
def head_inputs(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collects the penultimate features (the head's input) of every forward inside the block;
    works for the auxiliary branch too, since ``functional_call`` runs the same modules."""
    seen: list[torch.Tensor] = []
    handle = get_head(model).register_forward_pre_hook(lambda _m, inp: seen.append(inp[0]))
    try:
        yield seen
    finally:
        handle.remove()


class FinetuneStep:
    """One optimisation step of Stage II on a batch; shared by the stage and the benchmark."""

    def __init__(
        self, model: nn.Module, cfg: FinetuneConfig, device: torch.device, projection: nn.Module | None = None
    ) -> None:
        self.model, self.cfg, self.device = model, cfg, device
        self.projection = projection
        self.aux: AuxiliaryModel | None = None

    def set_mask(self, mask: WeightMask) -> None:
        self.aux = AuxiliaryModel(self.model, mask)

    def _branch(self, fn: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(outputs, vector to contrast) of one branch."""
        cfg = self.cfg
        if cfg.contrast_on == "features":
            with head_inputs(self.model) as feats:
                logits = fn(x)
            outputs = logits.float().softmax(1) if cfg.head_softmax else logits.float()
            assert self.projection is not None
            return outputs, self.projection(feats[-1].float())
        logits = fn(x).float()
        outputs = logits.softmax(1) if cfg.head_softmax else logits
        vector = outputs.softmax(1) if cfg.contrast_on == "probabilities" and not cfg.head_softmax else outputs
        return outputs, vector

    def loss(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        weight = float(getattr(cfg, "contrastive_weight", 1.0))
        if weight == 0:
            # The supervised term alone: no auxiliary forward at all, so nothing of the
            # contrastive branch (not even BatchNorm batch statistics) touches the model.
            with autocast_for(self.device):
                outputs, _ = self._branch(self.model, x1)
            alone: torch.Tensor = cfg.supervised_weight * supervised_loss(
                outputs, y, cfg.supervised, probabilities=cfg.head_softmax
            )
            return alone
        if self.aux is None:
            raise RuntimeError("set_mask() before the first step")
        # The authors' code contrasts both branches on the same view.
        aux_input = x2 if cfg.contrastive == "two-views" else x1
        with autocast_for(self.device):
            outputs, z = self._branch(self.model, x1)
            _, z_aux = self._branch(self.aux, aux_input)
        contrast = contrastive_loss(z, z_aux, cfg.temperature, cfg.contrastive)
        supervised = supervised_loss(outputs, y, cfg.supervised, probabilities=cfg.head_softmax)
        total: torch.Tensor = weight * contrast + cfg.supervised_weight * supervised
        return total

    def step(
        self, optimizer: torch.optim.Optimizer, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        loss = self.loss(x1, x2, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch's stubs leave Tensor.backward untyped
        optimizer.step()
        return loss.detach()
