"""[sweep]: several seeds and a product of values for dotted keys."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from labconsole.config.base import Section


class SweepConfig(Section):
    seeds: tuple[int, ...] = Field((), description="one run per seed; empty = the preset's seed")
    # {"finetune.criterion": ["gradient", "magnitude"], ...}: the product of all axes.
    axes: dict[str, list[Any]] = Field(default_factory=dict)
    # Named bundles of dotted keys for comparisons that are not a product of axes (a method and
    # its controls): the axis "recipe" lists the names, each point applies its recipe's keys.
    # {"continued-erm": {"finetune.contrastive_weight": 0}, "paper": {}}
    recipes: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @property
    def is_sweep(self) -> bool:
        return len(self.seeds) > 1 or any(len(v) > 1 for v in self.axes.values())

    def smoke(self) -> SweepConfig:
        # Keep every axis value (each must still run) and two seeds, so that even a smoke sweep
        # shows a standard error.
        return self.model_copy(update={"seeds": self.seeds[:2]})
