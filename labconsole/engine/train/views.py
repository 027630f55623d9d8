"""Two augmented views per training image for Stage II.

In-memory (uint8) splits get random translation by default (see ``FinetuneConfig.views``), or,
as an option, Paper A's Table 1 operations in one batched warp on the device: Table 1
operations — RandomResizedCrop (scale 0.7-1, ratio 3/4-4/3), horizontal flip, rotation ±15°,
affine translate ±10 % / scale 0.9-1.1, perspective 0.2 (p = 0.5) — are each a projective map
of the image plane, so their composition is one 3×3 matrix per image and a single
``grid_sample`` produces the view, with per-image random parameters (a torchvision v2 transform
on a batch would draw one set of parameters for the whole batch). Areas that leave the image
are filled with black, as torchvision's fill = 0 does. File splits go through
``finetune_view_transform`` twice per image in DataLoader workers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from labconsole.engine.data.groups import DatasetBundle, SplitData
from labconsole.engine.train.batches import translate_batch

ViewBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # x1, x2, y, g, index


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def homography_from_points(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """[B, 3, 3] H with H·src_k ∝ dst_k for the four points of each [B, 4, 2] set."""
    b = src.shape[0]
    rows = []
    for k in range(4):
        x, y = src[:, k, 0], src[:, k, 1]
        u, v = dst[:, k, 0], dst[:, k, 1]
        zero, one = torch.zeros_like(x), torch.ones_like(x)
        rows.append(torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], dim=1))
        rows.append(torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], dim=1))
    a = torch.stack(rows, dim=1)
    rhs = dst.reshape(b, 8)
    h = torch.linalg.solve(a, rhs)
    return torch.cat([h, torch.ones(b, 1, dtype=h.dtype)], dim=1).view(b, 3, 3)


def table1_matrices(n: int, generator: torch.Generator) -> torch.Tensor:
    """[n, 3, 3] maps from output to input coordinates (normalised to [-1, 1]), composed in
    Table 1's order: crop, flip, rotation, affine, perspective."""

    def eye() -> torch.Tensor:
        return torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)

    # RandomResizedCrop: area fraction s, aspect ratio r (log-uniform); sides clipped to the image.
    area = _uniform(n, 0.7, 1.0, generator)
    ratio = torch.exp(_uniform(n, math.log(3 / 4), math.log(4 / 3), generator))
    w = torch.sqrt(area * ratio).clamp(max=1.0)
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (1 - w) * _uniform(n, -1, 1, generator)
    cy = (1 - h) * _uniform(n, -1, 1, generator)
    crop = eye()
    crop[:, 0, 0], crop[:, 0, 2], crop[:, 1, 1], crop[:, 1, 2] = w, cx, h, cy
    flip = eye()
    flip[:, 0, 0] = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).double()
    angle = _uniform(n, -15, 15, generator) * math.pi / 180
    rot = eye()
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = angle.cos(), -angle.sin(), angle.sin(), angle.cos()
    scale = _uniform(n, 0.9, 1.1, generator)
    affine = eye()
    affine[:, 0, 0] = affine[:, 1, 1] = 1 / scale
    affine[:, 0, 2] = _uniform(n, -0.2, 0.2, generator)  # ±10 % of the side = ±0.2 in [-1, 1] units
    affine[:, 1, 2] = _uniform(n, -0.2, 0.2, generator)
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64).repeat(n, 1, 1)
    inward = torch.rand(n, 4, 2, generator=generator, dtype=torch.float64) * 0.2  # distortion 0.2 of half a side
    moved = corners - corners.sign() * inward
    persp = homography_from_points(corners, moved)
    apply = torch.rand(n, generator=generator) < 0.5
    persp[~apply] = torch.eye(3, dtype=torch.float64)
    return crop @ flip @ rot @ affine @ persp


def warp_batch(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Sample ``images`` [B, C, H, W] (float) through per-image output→input maps [B, 3, 3]."""
    b, _, height, width = images.shape
    device = images.device
    ys = (torch.arange(height, device=device, dtype=torch.float32) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=device, dtype=torch.float32) * 2 + 1) / width - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    base = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1).view(1, -1, 3)
    mapped = base @ matrices.to(device=device, dtype=torch.float32).transpose(1, 2)
    grid = (mapped[..., :2] / mapped[..., 2:].clamp_min(1e-6)).view(b, height, width, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def table1_views(images_uint8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One Table 1 view of every image (float, pixel scale 0-255, not normalised)."""
    return warp_batch(images_uint8.float(), table1_matrices(len(images_uint8), generator))


def translate_views(images_uint8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """ERM's augmentation of in-memory data: random translation by up to 1/16 of the side."""
    return translate_batch(images_uint8.float(), max(1, images_uint8.shape[-1] // 16), generator)


def translate_flip_views(images_uint8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random translation (reflect-padded) + horizontal flip."""
    x = translate_views(images_uint8, generator)
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


VIEW_MAKERS = {"translate": translate_views, "translate-flip": translate_flip_views, "table1": table1_views}


def two_views(images_uint8: torch.Tensor, generator: torch.Generator, views: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent views of every image, drawn in one batched call (one warp for both)."""
    make = VIEW_MAKERS[views]
    both = make(torch.cat([images_uint8, images_uint8]), generator)
    return both[: len(images_uint8)], both[len(images_uint8) :]


class TwoViewTransform:
    """PIL image → uint8 [2, C, S, S]: two independent draws of the fine-tuning transform."""

    def __init__(self, image_size: int) -> None:
        from labconsole.engine.data.transforms import finetune_view_transform

        self.transform = finetune_view_transform(image_size)

    def __call__(self, image: Any) -> torch.Tensor:
        return torch.stack([self.transform(image), self.transform(image)])


class ViewBatches:
    """Shuffled batches of (view 1, view 2, y, g, index), views normalised on the device."""

    def __init__(
        self,
        bundle: DatasetBundle,
        split: SplitData,
        *,
        batch_size: int,
        device: torch.device,
        views: str,
        seed: int,
        num_workers: int = 2,
    ) -> None:
        self.bundle, self.split, self.batch_size, self.device = bundle, split, batch_size, device
        self.views = views
        self.generator = torch.Generator().manual_seed(seed)
        self.num_workers = num_workers
        shape = (1, bundle.channels, 1, 1)
        self.mean = torch.tensor(bundle.mean, device=device).view(shape) * 255.0
        self.std = torch.tensor(bundle.std, device=device).view(shape) * 255.0
        self.images = split.images.to(device) if split.images is not None else None
        self.y, self.g = split.y.to(device), split.g.to(device)

    def num_batches(self) -> int:
        full, rest = divmod(len(self.split), self.batch_size)
        return full + (1 if rest >= 2 else 0)  # a batch of one has no negatives: dropped

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x.to(self.device, non_blocking=True).float() - self.mean) / self.std

    def epoch(self) -> Iterator[ViewBatch]:
        order = torch.randperm(len(self.split), generator=self.generator)
        if self.images is None:
            yield from self._file_epoch(order)
            return
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            if len(idx) < 2:
                break
            idx_dev = idx.to(self.device)
            raw = self.images[idx_dev]
            view1, view2 = two_views(raw, self.generator, self.views)
            yield self._normalise(view1), self._normalise(view2), self.y[idx_dev], self.g[idx_dev], idx

    def _file_epoch(self, order: torch.Tensor) -> Iterator[ViewBatch]:
        from torch.utils.data import DataLoader

        from labconsole.engine.data.files import ImageFileDataset

        dataset = ImageFileDataset(
            self.split.subset(order), TwoViewTransform(self.bundle.image_size), channels=self.bundle.channels
        )
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        start = 0
        for pair, _, _ in loader:
            idx = order[start : start + len(pair)]
            start += len(pair)
            if len(idx) < 2:
                break
            idx_dev = idx.to(self.device)
            yield self._normalise(pair[:, 0]), self._normalise(pair[:, 1]), self.y[idx_dev], self.g[idx_dev], idx
