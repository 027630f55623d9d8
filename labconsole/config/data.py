"""[data]: which dataset, where, and the knobs of the embedded synthetic one."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from labconsole.config.base import Section
from labconsole.config.vocab import DatasetName

__all__ = ["DataConfig", "DatasetName", "SyntheticConfig"]


class SyntheticConfig(Section):
    """The embedded default: real handwritten digits (sklearn) pasted as opaque tiles on
    crops of two photos (the spurious "place"). Waterbirds' group proportions by default."""

    train_counts: tuple[int, int, int, int] = (3498, 184, 56, 1057)
    val_per_group: tuple[int, int, int, int] = (150, 150, 150, 150)
    test_per_group: tuple[int, int, int, int] = (300, 300, 300, 300)
    # Digits 0-4 are class 0 ("landbird"), 5-9 class 1 ("waterbird") by default.
    class0_digits: tuple[int, ...] = (0, 1, 2, 3, 4)
    class1_digits: tuple[int, ...] = (5, 6, 7, 8, 9)
    tile_fraction: float = Field(0.5, gt=0.1, le=1.0, description="digit tile side / image side")
    background: Literal["photos", "stripes", "noise"] = "photos"
    jitter: bool = True  # random tile position (otherwise centred)

    @field_validator("train_counts", "val_per_group", "test_per_group")
    @classmethod
    def _non_negative(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(v < 0 for v in value):
            raise ValueError("group counts must be ≥ 0")
        return value


class DataConfig(Section):
    dataset: DatasetName = "synthetic-waterbirds"
    root: str = Field("", description="data folder; empty = --data-root or $LABCONSOLE_DATA")
    image_size: int = Field(32, ge=8, le=1024)
    seed: int = 0
    synthetic: SyntheticConfig = SyntheticConfig()
    # Real datasets: train with the augmentation of SPEC §1 (RandomResizedCrop + flip).
    augment: bool = True
    num_workers: int = Field(2, ge=0)
    # Cap on images per split (0 = all); useful to try a real dataset quickly.
    max_per_split: int = Field(0, ge=0)

    @property
    def is_embedded(self) -> bool:
        return self.dataset in ("synthetic-waterbirds", "digits", "digits-color")

    def smoke(self) -> DataConfig:
        if self.dataset in ("digits", "digits-color", "mnist", "fashion-mnist", "cifar10"):
            return self.model_copy(update={"dataset": "digits" if self.dataset != "digits-color" else self.dataset})
        return self.model_copy(
            update={
                "dataset": "synthetic-waterbirds",
                "image_size": 32,
                "synthetic": self.synthetic.model_copy(
                    update={
                        "train_counts": (120, 16, 8, 40),
                        "val_per_group": (16, 16, 16, 16),
                        "test_per_group": (16, 16, 16, 16),
                    }
                ),
            }
        )
