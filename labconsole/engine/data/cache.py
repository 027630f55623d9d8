"""Evaluation tensor cache: every image of a split decoded once into uint8, on the device
when it fits, normalised batch by batch. Readouts never re-read JPEGs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from labconsole.engine.data.groups import DatasetBundle, SplitData

# Keep at most this much uint8 image data on an accelerator; the rest stays in host memory.
DEVICE_BYTES_BUDGET = 8 * 1024**3


@dataclass
class TensorCache:
    name: str
    images: torch.Tensor  # uint8 [N, C, H, W]
    y: torch.Tensor
    g: torch.Tensor
    mean: torch.Tensor  # [1, C, 1, 1] float, on device
    std: torch.Tensor
    device: torch.device

    @classmethod
    def from_split(cls, split: SplitData, bundle: DatasetBundle, device: torch.device | str = "cpu") -> TensorCache:
        device = torch.device(device)
        images = split.images
        if images is None:
            from labconsole.engine.data.transforms import decode_eval_images

            images = decode_eval_images(split.paths or [], bundle.image_size, channels=bundle.channels)
        where = device if images.numel() <= DEVICE_BYTES_BUDGET or device.type == "cpu" else torch.device("cpu")
        images = images.to(where, non_blocking=True).contiguous()
        shape = (1, len(bundle.mean), 1, 1)
        return cls(
            name=split.name,
            images=images,
            y=split.y.to(device),
            g=split.g.to(device),
            mean=torch.tensor(bundle.mean, device=device, dtype=torch.float32).view(shape) * 255.0,
            std=torch.tensor(bundle.std, device=device, dtype=torch.float32).view(shape) * 255.0,
            device=device,
        )

    def __len__(self) -> int:
        return len(self.y)

    def normalize(self, images_uint8: torch.Tensor) -> torch.Tensor:
        x = images_uint8.to(self.device, non_blocking=True).float()
        return (x - self.mean) / self.std

    def batches(
        self, batch_size: int, index: torch.Tensor | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(normalised images, y, g) for the whole split or for ``index``, in order."""
        n = len(self) if index is None else len(index)
        for start in range(0, n, batch_size):
            if index is None:
                sl = slice(start, start + batch_size)
                yield self.normalize(self.images[sl]), self.y[sl], self.g[sl]
            else:
                idx = index[start : start + batch_size]
                yield (
                    self.normalize(self.images[idx.to(self.images.device)]),
                    self.y[idx.to(self.y.device)],
                    self.g[idx.to(self.g.device)],
                )
