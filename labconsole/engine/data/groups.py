"""Groups = (class y, spurious attribute a), always carried with their names.

For binary tasks the index is ``g = 2*y + a``; in general ``g = y * n_attrs + a``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from labconsole.errors import UserError


@dataclass(frozen=True)
class GroupInfo:
    class_names: tuple[str, ...]
    attr_names: tuple[str, ...]
    group_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.group_names:
            names = tuple(f"{c}-{a}" for c in self.class_names for a in self.attr_names)
            object.__setattr__(self, "group_names", names)
        expected = len(self.class_names) * len(self.attr_names)
        if len(self.group_names) != expected:
            raise ValueError(f"need {expected} group names, got {len(self.group_names)}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_groups(self) -> int:
        return len(self.group_names)

    def group_of(self, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return y * len(self.attr_names) + a

    def resolve(self, name_or_index: str | int) -> int:
        """A group given by name (``waterbird-land``) or index (``2``) → its index."""
        if isinstance(name_or_index, int) or str(name_or_index).isdigit():
            index = int(name_or_index)
            if 0 <= index < self.num_groups:
                return index
        elif name_or_index in self.group_names:
            return self.group_names.index(name_or_index)
        raise UserError(
            f"unknown group {name_or_index!r}: this dataset has groups "
            + ", ".join(f"{i}={n}" for i, n in enumerate(self.group_names))
        )


WATERBIRDS_GROUPS = GroupInfo(
    class_names=("landbird", "waterbird"),
    attr_names=("land", "water"),
)
CELEBA_GROUPS = GroupInfo(
    class_names=("nonblond", "blond"),
    attr_names=("female", "male"),
)

# Known group counts per split (SPEC §1), g = 0..3.
KNOWN_COUNTS: dict[str, dict[str, tuple[int, ...]]] = {
    "waterbirds": {
        "train": (3498, 184, 56, 1057),
        "val": (467, 466, 133, 133),
        "test": (2255, 2255, 642, 642),
    },
    "celeba": {
        "train": (71629, 66874, 22880, 1387),
        "val": (8535, 8276, 2874, 182),
        "test": (9767, 7535, 2480, 180),
    },
}


@dataclass
class SplitData:
    """One split. Images are either a uint8 tensor [N, C, H, W] at model resolution
    (embedded data, or a decoded cache) or a list of files read through a transform."""

    name: str
    y: torch.Tensor  # long [N]
    a: torch.Tensor  # long [N]
    g: torch.Tensor  # long [N]
    images: torch.Tensor | None = None  # uint8 [N, C, H, W]
    paths: list[Path] | None = None

    def __post_init__(self) -> None:
        n = len(self.y)
        if len(self.a) != n or len(self.g) != n:
            raise ValueError("y, a, g must have the same length")
        if self.images is None and self.paths is None:
            raise ValueError("a split needs images or paths")
        if self.images is not None and len(self.images) != n:
            raise ValueError("images and labels differ in length")
        if self.paths is not None and len(self.paths) != n:
            raise ValueError("paths and labels differ in length")

    def __len__(self) -> int:
        return len(self.y)

    def group_counts(self, num_groups: int) -> list[int]:
        return torch.bincount(self.g, minlength=num_groups).tolist()

    def subset(self, index: torch.Tensor | list[int]) -> SplitData:
        index = torch.as_tensor(index, dtype=torch.long)
        return SplitData(
            name=self.name,
            y=self.y[index],
            a=self.a[index],
            g=self.g[index],
            images=None if self.images is None else self.images[index],
            paths=None if self.paths is None else [self.paths[i] for i in index.tolist()],
        )


@dataclass
class DatasetBundle:
    """A dataset ready for the engine: splits, group names, image geometry, provenance."""

    name: str
    groups: GroupInfo
    splits: dict[str, SplitData]
    image_size: int
    channels: int = 3
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    layout: str = "embedded"
    root: str | None = None
    check: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> SplitData:
        try:
            return self.splits[name]
        except KeyError:
            raise UserError(f"dataset {self.name!r} has no split {name!r} (has: {', '.join(self.splits)})") from None

    def train_group_proportions(self) -> list[float]:
        counts = self.split("train").group_counts(self.groups.num_groups)
        total = max(1, sum(counts))
        return [c / total for c in counts]
