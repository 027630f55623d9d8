"""What Stage II adds to ``summary.json``: pruned-contrastive fine-tuning (with its start, its
curve and its continued-ERM control) and the DFR baseline."""

from __future__ import annotations

from pydantic import Field, JsonValue

from labconsole.engine.records.base import Record, Selection, Splits
from labconsole.engine.records.sections import StageSection


class FinetuneBefore(Record):
    """The ERM-selected model a fine-tuning run is compared with, and where it came from."""

    source: str = ""
    splits: Splits = Field(default_factory=dict)


class FinetuneStart(Record):
    """The checkpoint fine-tuning started from, and its metrics (epoch 0)."""

    checkpoint: str = ""
    note: str = ""
    kick_in_epoch: int | None = None
    splits: Splits = Field(default_factory=dict)


class FinetuneEpoch(Record):
    """One point of the fine-tuning curve (epoch 0 = the starting model)."""

    epoch: int
    train_loss: float | None = None
    masked: str | None = None
    val_wga: float | None = None
    test_wga: float | None = None
    train_wga: float | None = None  # last: written after the others, as the first runs wrote it


class FinetuneControl(Record):
    """Continued ERM from the same start (the supervised term alone): Stage II's control."""

    method: str = ""
    selection: Selection | None = None
    wga_after: dict[str, float | None] = Field(default_factory=dict)
    history: list[dict[str, JsonValue]] = Field(default_factory=list)


class FinetuneSection(StageSection):
    """Stage II pruned-contrastive fine-tuning: WGA before and after, per-epoch masks."""

    variant: str = ""
    variant_options: dict[str, JsonValue] = Field(default_factory=dict)
    method: str = ""
    selection: Selection | None = None
    splits: Splits = Field(default_factory=dict)
    wga_before: dict[str, float | None] = Field(default_factory=dict)
    wga_after: dict[str, float | None] = Field(default_factory=dict)
    wga_gain: dict[str, float | None] = Field(default_factory=dict)
    before: FinetuneBefore | None = None
    start: FinetuneStart | None = None
    epochs: int | None = None
    mask_last_epoch: dict[str, JsonValue] = Field(default_factory=dict)
    mask_realised: str | None = None  # "p = 0.01 % of 336 neurons → 1 neuron (0.30 %)"
    history: list[FinetuneEpoch] = Field(default_factory=list)  # epoch 0 = the starting model
    beat_start_on_val: bool | None = None
    warning: str | None = None  # "fine-tuning never beat its start on val: …"
    contrastive_weight: float | None = None
    batchnorm: str | None = None
    control: FinetuneControl | None = None
    method_minus_control: dict[str, float | None] = Field(default_factory=dict)


class DfrSection(StageSection):
    """Deep feature reweighting on the trained model's penultimate features."""

    method: str = ""
    base: str = ""
    selection: Selection | None = None
    splits: Splits = Field(default_factory=dict)
    wga_before: dict[str, float | None] = Field(default_factory=dict)
    wga_after: dict[str, float | None] = Field(default_factory=dict)
    checkpoint: str | None = None
