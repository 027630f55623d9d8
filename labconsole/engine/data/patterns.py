"""Paper B's spurious patterns (SPEC §6) and their seeded injection into training images.

Images are float tensors in [0, 1], shape [N, C, H, W] (or [C, H, W]); coordinates are from the
top-left. Small patterns (S1/S2/S3) set pixels to 1 in every channel; random patterns (R1/R2/R3)
add ``a·δ`` and clip, with one δ ~ U[0,1) of the image's shape drawn per seed and shared by every
spurious training example and by the test set; Inv is a vertical bar that looks like a "1".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from labconsole.config.vocab import PATTERNS
from labconsole.errors import UserError

SMALL_SIDES = {"S1": 1, "S2": 3, "S3": 5}
RANDOM_AMPLITUDES = {"R1": 0.25, "R2": 0.5, "R3": 1.0}
PATTERN_NAMES: tuple[str, ...] = PATTERNS

# Inv on 28×28: rows 3–24 and columns 13–15 (inclusive); other sizes scale these bounds.
_INV_ROWS_28 = (3, 25)  # half-open
_INV_COLS_28 = (13, 16)


def check_pattern_name(name: str) -> str:
    if name not in PATTERN_NAMES:
        raise UserError(f"unknown spurious pattern {name!r} (known: {', '.join(PATTERN_NAMES)})")
    return name


def inv_bounds(height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Half-open (row, column) ranges of the Inv bar, scaled proportionally from 28×28."""

    def scale(bounds: tuple[int, int], size: int) -> tuple[int, int]:
        lo = round(bounds[0] * size / 28)
        hi = max(lo + 1, round(bounds[1] * size / 28))
        return lo, min(hi, size)

    return scale(_INV_ROWS_28, height), scale(_INV_COLS_28, width)


@dataclass(frozen=True)
class Pattern:
    """A spurious pattern for images of one shape; ``apply`` never modifies its input."""

    name: str
    shape: tuple[int, int, int]  # (C, H, W)
    mask: torch.Tensor | None = None  # bool [C, H, W]: pixels set to 1 (S*, Inv)
    delta: torch.Tensor | None = None  # float [C, H, W]: a·δ added then clipped (R*)

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[-3:]) != self.shape:
            raise UserError(f"pattern {self.name} was made for images {self.shape}, got {tuple(images.shape[-3:])}")
        if self.delta is not None:
            return (images + self.delta.to(images.device, images.dtype)).clamp_(0.0, 1.0)
        assert self.mask is not None
        return torch.where(
            self.mask.to(images.device), torch.ones((), dtype=images.dtype, device=images.device), images
        )

    @property
    def region(self) -> torch.Tensor:
        """Bool [H, W]: pixels the pattern touches (for importance maps)."""
        if self.mask is not None:
            return self.mask.any(0)
        assert self.delta is not None
        return (self.delta > 0).any(0)


def make_pattern(name: str, shape: tuple[int, int, int], seed: int = 0) -> Pattern:
    """Build pattern ``name`` for images of shape (C, H, W). ``seed`` only matters for R1–R3."""
    check_pattern_name(name)
    _channels, height, width = shape
    if name in SMALL_SIDES:
        side = SMALL_SIDES[name]
        if side > min(height, width):
            raise UserError(f"pattern {name} ({side}×{side}) does not fit images of {height}×{width}")
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[:, :side, :side] = True
        return Pattern(name, shape, mask=mask)
    if name == "Inv":
        (r0, r1), (c0, c1) = inv_bounds(height, width)
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[:, r0:r1, c0:c1] = True
        return Pattern(name, shape, mask=mask)
    generator = torch.Generator().manual_seed(int(seed) * 7919 + 17)
    delta = torch.rand(shape, generator=generator, dtype=torch.float32)
    return Pattern(name, shape, delta=RANDOM_AMPLITUDES[name] * delta)


def choose_spurious_indices(labels: torch.Tensor, target: int, n: int, seed: int) -> torch.Tensor:
    """``n`` distinct indices of training images of class ``target``, drawn with ``seed``."""
    labels = labels.cpu()
    present = sorted(set(labels.tolist()))
    if target not in present:
        raise UserError(f"rare.target_class = {target}: the dataset has no such class (classes: {present})")
    candidates = torch.nonzero(labels == target).flatten()
    if n < 0:
        raise UserError(f"number of spurious examples must be ≥ 0, got {n}")
    if n > len(candidates):
        raise UserError(
            f"{n} spurious examples requested but the training split has only {len(candidates)} images "
            f"of target class {target}; use a smaller n"
        )
    generator = torch.Generator().manual_seed(int(seed) * 104729 + 3)
    order = torch.randperm(len(candidates), generator=generator)
    return candidates[order[:n]].sort().values


def inject_pattern(
    images: torch.Tensor, labels: torch.Tensor, target: int, n: int, pattern: Pattern, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A copy of ``images`` with ``pattern`` added to ``n`` seeded images of class ``target``.

    Labels are unchanged (the caller keeps using ``labels``). Returns (images, chosen indices).
    """
    chosen = choose_spurious_indices(labels, target, n, seed)
    out = images.clone()
    if len(chosen):
        idx = chosen.to(images.device)
        out[idx] = pattern.apply(images[idx])
    return out, chosen
