"""``sweep.json`` and ``aggregate.json``."""

from __future__ import annotations

from pydantic import Field, JsonValue

from labconsole.engine.records.base import JsonScalar, MeanSE, Record, VersionedRecord
from labconsole.engine.records.manifest import ExecutorInfo

# -- sweeps ---------------------------------------------------------------------------------------

Point = dict[str, JsonScalar]  # dotted preset key → value (and "seed")


class SweepPoint(Record):
    point: Point = Field(default_factory=dict)
    dir: str


class SweepIndex(VersionedRecord):
    """``sweep.json``: the sweep's points and their run folders."""

    preset: str = ""
    reproduces: str = ""
    variant: str = ""
    description: str = ""
    axes: dict[str, list[JsonScalar]] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=list)
    reference: dict[str, JsonValue] = Field(default_factory=dict)
    executor: ExecutorInfo | None = None
    points: list[SweepPoint] = Field(default_factory=list)


class IncompleteRun(Record):
    dir: str
    seed: JsonScalar = 0
    status: str = ""
    error: str | None = None


class Combination(Record):
    """One combination of axis values: its finished runs and mean ± s.e. of every number."""

    point: Point = Field(default_factory=dict)
    runs: list[str] = Field(default_factory=list)
    incomplete: list[IncompleteRun] = Field(default_factory=list)
    metrics: dict[str, MeanSE] = Field(default_factory=dict)


class RunCounts(Record):
    planned: int = 0
    done: int = 0
    failed: int = 0


class SweepAggregate(VersionedRecord):
    """``aggregate.json``."""

    preset: str = ""
    reproduces: str = ""
    runs: RunCounts = Field(default_factory=RunCounts)
    statistic: str = ""
    combinations: list[Combination] = Field(default_factory=list)
