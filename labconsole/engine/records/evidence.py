"""A Stage I readout's evidence block (``labconsole.engine.stage1.evidence.evidence_readout``):
the critical set's Δ per split and group next to its control draws, p, the memorization
signature and the flipped examples."""

from __future__ import annotations

from pydantic import Field

from labconsole.engine.records.base import GroupValues, PerSplit, Record


class GroupFlips(Record):
    """One group's examples that flipped under the intervention (lists capped, counts exact),
    with the unmodified model's loss and margin for each listed one."""

    n: int = 0
    n_to_wrong: int = 0
    n_to_right: int = 0
    to_wrong: list[int] = Field(default_factory=list)
    to_wrong_loss: list[float] = Field(default_factory=list)
    to_wrong_margin: list[float] = Field(default_factory=list)
    to_right: list[int] = Field(default_factory=list)
    to_right_loss: list[float] = Field(default_factory=list)
    to_right_margin: list[float] = Field(default_factory=list)
    group_mean_loss: float | None = None


class Signature(Record):
    """Δtrain − Δtest per group for the critical set and each control draw, with p."""

    critical_pp: GroupValues = Field(default_factory=dict)
    control_pp: dict[str, list[float]] = Field(default_factory=dict)
    control_mean_pp: GroupValues = Field(default_factory=dict)
    control_sd_pp: GroupValues = Field(default_factory=dict)
    p: GroupValues = Field(default_factory=dict)
    # Whether the group's test Δ stayed inside the control draws' spread (absent in runs
    # recorded before "seen" required it).
    test_held: dict[str, bool | None] = Field(default_factory=dict)
    verdict: dict[str, str] = Field(default_factory=dict)


class Evidence(Record):
    """A readout row's ``evidence``: critical Δ (pp) per split and group, the control draws'
    p per split and group, the signature (None without train and test) and the flips, with
    each draw's Δ (pp) per split and group and what the flips' ids are."""

    kind: str = ""
    draws: int | None = None
    histogram: dict[str, int] = Field(default_factory=dict)
    critical: PerSplit = Field(default_factory=dict)
    p: PerSplit = Field(default_factory=dict)
    signature: Signature | None = None
    flips: dict[str, dict[str, GroupFlips]] = Field(default_factory=dict)
    # Declared after the fields above so a row is written with its keys in the order it always
    # had (these two were extra keys once, written after the declared ones).
    draws_pp: dict[str, dict[str, list[float]]] = Field(default_factory=dict)
    flip_ids: str = ""
