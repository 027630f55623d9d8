"""Training batches from either an in-memory uint8 split (embedded data) or image files.

In-memory splits are augmented on the device (random translation), so a CPU epoch of the
embedded data costs no decoding at all. File splits go through a DataLoader with the train
transform of SPEC §1 and are normalised on the device.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from labconsole.engine.data.groups import DatasetBundle, SplitData

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # x, y, g, index


def translate_batch(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Random translation by up to ``pad`` pixels (reflect-padded crop), per image."""
    if pad <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


class TrainBatches:
    """Shuffled batches of a split; ``index`` restricts or re-samples which examples are used."""

    def __init__(
        self,
        bundle: DatasetBundle,
        split: SplitData,
        *,
        batch_size: int,
        device: torch.device,
        augment: bool,
        seed: int,
        num_workers: int = 2,
        drop_last: bool = False,
    ) -> None:
        self.bundle = bundle
        self.split = split
        self.batch_size = batch_size
        self.device = device
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed)
        self.num_workers = num_workers
        self.drop_last = drop_last
        shape = (1, bundle.channels, 1, 1)
        self.mean = torch.tensor(bundle.mean, device=device).view(shape) * 255.0
        self.std = torch.tensor(bundle.std, device=device).view(shape) * 255.0
        self.images = split.images.to(device) if split.images is not None else None
        self.y = split.y.to(device)
        self.g = split.g.to(device)

    def num_batches(self, n: int | None = None) -> int:
        n = len(self.split) if n is None else n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return (x_uint8.to(self.device, non_blocking=True).float() - self.mean) / self.std

    def epoch(self, index: torch.Tensor | None = None) -> Iterator[Batch]:
        order = index if index is not None else torch.arange(len(self.split))
        order = order[torch.randperm(len(order), generator=self.generator)]
        if self.images is not None:
            yield from self._tensor_epoch(order)
        else:
            yield from self._file_epoch(order)

    def _tensor_epoch(self, order: torch.Tensor) -> Iterator[Batch]:
        assert self.images is not None
        pad = max(1, self.bundle.image_size // 16) if self.augment else 0
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            idx_dev = idx.to(self.device)
            x = self.images[idx_dev]
            if pad:
                x = translate_batch(x, pad, self.generator)
            yield self.normalize(x), self.y[idx_dev], self.g[idx_dev], idx

    def _file_epoch(self, order: torch.Tensor) -> Iterator[Batch]:
        from torch.utils.data import DataLoader

        from labconsole.engine.data.files import training_dataset

        dataset = training_dataset(
            self.split.subset(order), self.bundle.image_size, augment=self.augment, channels=self.bundle.channels
        )
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            drop_last=self.drop_last,
        )
        start = 0
        for x, _, _ in loader:
            idx = order[start : start + len(x)]
            start += len(x)
            idx_dev = idx.to(self.device)
            yield self.normalize(x), self.y[idx_dev], self.g[idx_dev], idx
