"""Paper B's training loop for small models on whole-dataset tensors (no DataLoader).

Images live on the device as float [N, C, H, W] in [0, 1] (Paper B feeds raw pixels); each epoch
draws a seeded permutation and walks it in mini-batches. Options: Adam or SGD with momentum, LR ×γ
at fixed epochs, weight decay, Gaussian input noise, gradient clipping by value or by norm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from labconsole.config.rare import RareConfig

if TYPE_CHECKING:
    from labconsole.presets import Preset

EpochHook = Callable[[int, float], None]  # (epoch, mean train loss); may raise Cancelled


@dataclass(frozen=True)
class Recipe:
    optimizer: str = "adam"
    lr: float = 0.01
    momentum: float = 0.9
    epochs: int = 70
    batch_size: int = 128
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    weight_decay: float = 0.0
    input_noise_std: float = 0.0
    clip_value: float = 0.0
    clip_norm: float = 0.0
    # "crop_flip": Paper B's CIFAR-10 augmentation (pad 4, random crop back, horizontal flip p = ½).
    augment: str = "none"

    @classmethod
    def from_config(cls, rare: RareConfig, augment: bool = False) -> Recipe:
        """The [rare] recipe; ``augment`` = the preset's ``data.augment`` (Paper B augments CIFAR-10)."""
        return cls(
            optimizer=rare.optimizer,
            lr=rare.lr,
            momentum=rare.momentum,
            epochs=rare.epochs,
            batch_size=rare.batch_size,
            lr_milestones=tuple(rare.lr_milestones),
            lr_gamma=rare.lr_gamma,
            weight_decay=rare.weight_decay,
            input_noise_std=rare.input_noise_std,
            clip_value=rare.clip_value,
            clip_norm=rare.clip_norm,
            augment="crop_flip" if augment else "none",
        )

    def with_(self, **changes: Any) -> Recipe:
        return replace(self, **changes)


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Zero-pad each side by ``pad``, crop a random H×W window, flip horizontally with p = ½."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # [N, H, 1]
    cols = ox[:, None] + torch.arange(w, device=x.device)  # [N, W]
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, :]  # [N, 1, W]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
        )
    return torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)


def train_classifier(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe, *, seed: int, on_epoch: EpochHook | None = None
) -> list[float]:
    """Train ``model`` in place on (x, y); returns the mean loss of every epoch."""
    device = x.device
    model.train()
    optimizer = make_optimizer(model, recipe)
    milestones = [m for m in recipe.lr_milestones if m <= recipe.epochs]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=recipe.lr_gamma)
    # Batch order and input noise come from their own generators so that they do not depend on
    # what else ran before (reproducible per seed).
    order_gen = seeded_generator(seed * 2 + 1)
    noise_gen = seeded_generator(seed * 2 + 2, device)
    augment_gen = seeded_generator(seed * 2 + 3)
    params = [p for p in model.parameters() if p.requires_grad]
    losses: list[float] = []
    n = len(y)
    for epoch in range(1, recipe.epochs + 1):
        perm = torch.randperm(n, generator=order_gen).to(device)
        total = torch.zeros((), device=device)
        for start in range(0, n, recipe.batch_size):
            idx = perm[start : start + recipe.batch_size]
            xb, yb = x[idx], y[idx]
            if recipe.augment == "crop_flip":
                xb = crop_flip(xb, augment_gen)
            if recipe.input_noise_std > 0:
                xb = xb + recipe.input_noise_std * torch.randn(xb.shape, generator=noise_gen, device=device)
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch's stubs leave Tensor.backward untyped
            if recipe.clip_value > 0:
                torch.nn.utils.clip_grad_value_(params, recipe.clip_value)
            if recipe.clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, recipe.clip_norm)
            optimizer.step()
            total += loss.detach() * len(idx)
        scheduler.step()
        epoch_loss = float(total) / n  # one sync per epoch
        losses.append(epoch_loss)
        if on_epoch is not None:
            on_epoch(epoch, epoch_loss)
    model.eval()
    return losses


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Softmax probabilities [N, C] (eval mode), on the device of ``x``."""
    model.eval()
    outs = [F.softmax(model(x[i : i + batch_size]), dim=1) for i in range(0, len(x), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def build_model(
    preset: Preset,
    num_classes: int,
    channels: int,
    image_size: int,
    seed: int,
    device: torch.device,
    backbone: str | None = None,
) -> nn.Module:
    """A fresh model of the preset's backbone, initialised from ``seed``."""
    from labconsole.engine.models.factory import create_model

    # Seed the initialisation without touching the caller's global random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) * 1000 + 7)
        model = create_model(
            backbone or preset.model.backbone,
            num_classes,
            in_channels=channels,
            image_size=image_size,
            width=preset.model.width,
            weights=preset.model.weights,
            allow_download=preset.model.allow_download,
        )
    return model.to(device)
