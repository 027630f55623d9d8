"""[sweep]: several seeds and a product of values for dotted keys."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from labconsole.config.base import Section


class SweepConfig(Section):
    seeds: tuple[int, ...] = Field((), description="one run per seed; empty = the preset's seed")
    # {"finetune.criterion": ["gradient", "magnitude"], ...}: the product of all axes.
    axes: dict[str, list[Any]] = Field(default_factory=dict)

    @property
    def is_sweep(self) -> bool:
        return len(self.seeds) > 1 or any(len(v) > 1 for v in self.axes.values())

    def smoke(self) -> SweepConfig:
        # Keep every axis value (each must still run) and two seeds, so that even a smoke sweep
        # shows a standard error.
        return self.model_copy(update={"seeds": self.seeds[:2]})
