"""What an MLP looks at (Paper B Fig. 3) and how much it needs (Fig. 15): pixel importance from
the first-layer weights, and inputs with a fraction of their non-zero pixels zeroed."""

from __future__ import annotations

import torch


def first_input_linear(model: torch.nn.Module, inputs: int) -> torch.nn.Linear | None:
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.in_features == inputs:
            return module
    return None


def pixel_importance(model: torch.nn.Module, shape: tuple[int, int, int], kind: str = "signed") -> torch.Tensor | None:
    """[H, W]: max over hidden units (and channels) of the first-layer weight from each pixel.

    ``kind="signed"`` is Paper B's "maximum weight on an out-going edge" (§3.3); ``"abs"`` takes
    the largest magnitude instead, so strongly negative (inhibiting) weights count too.
    """
    layer = first_input_linear(model, shape[0] * shape[1] * shape[2])
    if layer is None:
        return None
    weights = layer.weight.detach()
    if kind == "abs":
        weights = weights.abs()
    elif kind != "signed":
        raise ValueError(f"pixel importance kind {kind!r}: expected 'signed' or 'abs'")
    return weights.amax(0).view(shape).amax(0).cpu()


def zero_fraction_of_pixels(x: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Zero ⌊fraction·k⌋ randomly chosen of the k non-zero pixels (all channels) of each image."""
    nonzero = (x != 0).any(1)  # [N, H, W]
    n_img = len(x)
    draw = torch.rand(nonzero.shape, generator=generator).to(x.device)
    draw = torch.where(nonzero, draw, torch.full_like(draw, 2.0)).view(n_img, -1)
    k = (nonzero.view(n_img, -1).sum(1).float() * fraction).floor().long()
    ranks = draw.argsort(1).argsort(1)  # rank of each pixel's draw within its image
    chosen = (ranks < k.unsqueeze(1)).view_as(nonzero)
    return x.masked_fill(chosen.unsqueeze(1), 0.0)
