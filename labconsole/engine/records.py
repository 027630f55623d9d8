"""The run-directory schema: one typed record per file the engine writes.

``manifest.json`` → ``Manifest``; ``summary.json`` → ``RunSummary`` (the run's top-level
numbers plus one section per stage); ``artifacts/stage1_readouts.json`` → ``ReadoutsArtifact``;
``sweep.json`` → ``SweepIndex``; ``aggregate.json`` → ``SweepAggregate``; the console's saved
session → ``ConsoleSession``. The engine writes through these models and every reader (report,
headless printer, ``labconsole runs``, console) reads through them, so a renamed or removed
field fails loudly where it is produced instead of blanking a report section.

Versions: every file carries ``schema_version``. Version 0 is the layout written before the
field existed (the same keys, no version field): it loads as it is. A file whose version is
newer than ``SCHEMA_VERSION``, or that does not fit its model, raises ``RunFormatError`` naming
the file and its version. Unknown extra keys are kept (a stage may record more than the
report shows); they are never required.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from labconsole.errors import UserError

SCHEMA_VERSION = 1
"""Version written by this code. 0 = files from before the version field (same layout)."""

JsonScalar = str | int | float | bool | None
GroupValues = dict[str, float | None]  # group name → accuracy (fraction) or change (pp)
PerSplit = dict[str, GroupValues]  # split → group → value
# A neuron: (layer, index), with its ranking score where one was computed.
NeuronEntry = tuple[str, int] | tuple[str, int, float | None]


class RunFormatError(UserError):
    """A run-directory file is from an unknown schema version or does not fit its record."""


class Record(BaseModel):
    """A JSON file's (or a part's) typed view. Extra keys are kept as they are.

    ``to_json`` writes the fields that were given or assigned (not every default), so a file
    read and written back keeps exactly its keys."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_json(self) -> dict[str, JsonValue]:
        dumped: dict[str, JsonValue] = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return dumped


class VersionedRecord(Record):
    """A whole file; it always names its schema version."""

    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, JsonValue]:
        return {"schema_version": self.schema_version, **super().to_json()}


# -- accuracies -------------------------------------------------------------------------------


class SplitMetrics(Record):
    """Per-group accuracy and the named means of one split (``labconsole.engine.evaluate``)."""

    groups: GroupValues = Field(default_factory=dict)
    group_counts: dict[str, int] = Field(default_factory=dict)
    wga: float | None = None
    worst_group: str | None = None
    mean: float | None = None
    mean_train_weighted: float | None = None
    mean_groups: float | None = None
    wga_quantum: float | None = None
    n: int = 0


Splits = dict[str, SplitMetrics]


class Selection(Record):
    """How the reported epoch (or DFR's C) was chosen."""

    rule: str = ""
    epoch: int | None = None
    val_wga: float | None = None


# -- stage sections of summary.json -------------------------------------------------------------


class StageSection(Record):
    """What one stage adds to ``summary.json``. ``enter`` puts it there: by default under the
    stage's own name; the ERM and model stages also fill the run's top-level numbers."""

    def enter(self, summary: RunSummary, stage: str) -> None:
        summary.set_section(stage, self)


class GenericSection(StageSection):
    """A stage whose summary only the generic report pass shows (free-form JSON)."""


class ErmResult(StageSection):
    """What the ERM stage returns; its splits and selection are the run's top-level numbers."""

    selection: Selection | None = None
    splits: Splits = Field(default_factory=dict)
    epochs: int | None = None

    def enter(self, summary: RunSummary, stage: str) -> None:
        summary.splits = self.splits
        summary.selection = self.selection
        summary.epochs = self.epochs
        summary.erm = ErmSection(epochs=self.epochs)


class ErmSection(Record):
    epochs: int | None = None


class ModelSection(StageSection):
    """The model Stage I studies: a given checkpoint (evaluated) or one trained by ERM."""

    source: str = ""
    checkpoint: str | None = None
    splits: Splits = Field(default_factory=dict)
    selection: Selection | None = None
    epochs: int | None = None

    def enter(self, summary: RunSummary, stage: str) -> None:
        summary.model = self
        if self.splits:  # the model under study fills the documented top level, as ERM does
            summary.splits = self.splits
            summary.selection = self.selection or Selection(rule=f"given checkpoint {self.checkpoint or ''}")


class ReadoutSplit(Record):
    """One split of a readout: per group the baseline and post-edit accuracy (fractions), the
    change and its spread over seeds or control draws (percentage points)."""

    baseline: GroupValues = Field(default_factory=dict)
    after: GroupValues = Field(default_factory=dict)
    delta_pp: GroupValues = Field(default_factory=dict)
    spread_pp: GroupValues = Field(default_factory=dict)


class Readout(Record):
    """``Session.readout``'s result: an intervention's effect per split, with its control."""

    label: str = ""
    mode: str = "zero"
    std: float | None = None
    seeds: int = 1
    where: str = "weight"
    neurons: list[NeuronEntry] = Field(default_factory=list)
    splits: dict[str, ReadoutSplit] = Field(default_factory=dict)
    control: dict[str, ReadoutSplit] | None = None
    control_neurons: list[list[tuple[str, int]]] = Field(default_factory=list)
    wga_quantum_pp: dict[str, float | None] = Field(default_factory=dict)
    seconds: float | None = None


def readout_key(
    criterion: str,
    ranked_group: str | None,
    k: int | None,
    percent: float | None,
    mode: str,
    std: float | None,
    where: str = "weight",
) -> str:
    """The name a reference path uses for one Stage I readout row, e.g.
    ``gradient@landbird-water/top3/zero`` or ``magnitude/top1/noise σ=0.01``."""
    parts = [criterion + (f"@{ranked_group}" if ranked_group else "")]
    parts.append(f"top{percent:g}%" if percent is not None else f"top{k}")
    parts.append(mode + (f" σ={std:g}" if std is not None and mode != "zero" else ""))
    if where != "weight":
        parts.append(where)
    return "/".join(parts)


class NeuronsRow(Record):
    """A compact Stage I readout row (summary.json ``neurons.rows``)."""

    label: str = ""
    criterion: str = ""
    ranked_group: str | None = None
    k: int | None = None
    percent: float | None = None
    mode: str = "zero"
    std: float | None = None
    where: str = "weight"
    neurons: list[NeuronEntry] = Field(default_factory=list)
    delta_pp: PerSplit = Field(default_factory=dict)
    spread_pp: PerSplit = Field(default_factory=dict)
    control_delta_pp: PerSplit = Field(default_factory=dict)
    control_spread_pp: PerSplit = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return readout_key(self.criterion, self.ranked_group, self.k, self.percent, self.mode, self.std, self.where)


class ReadoutRow(Readout):
    """A full Stage I readout row (``artifacts/stage1_readouts.json``): the selection plus the
    readout, with the ranking's scores beside the neurons."""

    criterion: str = ""
    ranked_group: str | None = None
    k: int | None = None
    percent: float | None = None

    def compact(self) -> NeuronsRow:
        control = self.control or {}
        return NeuronsRow(
            label=self.label,
            criterion=self.criterion,
            ranked_group=self.ranked_group,
            k=self.k,
            percent=self.percent,
            mode=self.mode,
            std=self.std,
            where=self.where,
            neurons=list(self.neurons),
            delta_pp={s: v.delta_pp for s, v in self.splits.items()},
            spread_pp={s: v.spread_pp for s, v in self.splits.items()},
            control_delta_pp={s: v.delta_pp for s, v in control.items()},
            control_spread_pp={s: v.spread_pp for s, v in control.items()},
        )


class ReadoutsArtifact(VersionedRecord):
    """``artifacts/stage1_readouts.json``."""

    baseline: PerSplit = Field(default_factory=dict)
    group_names: list[str] = Field(default_factory=list)
    minority_groups: list[str] = Field(default_factory=list)
    rows: list[ReadoutRow] = Field(default_factory=list)


class NeuronsSection(StageSection):
    """Stage I unstructured tracing (summary.json ``neurons``)."""

    baseline: PerSplit = Field(default_factory=dict)
    minority_groups: list[str] = Field(default_factory=list)
    wga_quantum_pp: dict[str, float | None] = Field(default_factory=dict)
    rows: list[NeuronsRow] = Field(default_factory=list)
    artifact: str | None = None
    seconds: float | None = None

    def readouts(self) -> dict[str, NeuronsRow]:
        """Rows by ``readout_key`` (the first row of a key wins)."""
        out: dict[str, NeuronsRow] = {}
        for row in self.rows:
            out.setdefault(row.key, row)
        return out


class Ranking(Record):
    """One neuron ranking: ``neurons`` = (layer, index, score) best first."""

    criterion: str
    group: str | None = None
    scope: str = "global"
    k: float = 0
    neurons: list[tuple[str, int, float]] = Field(default_factory=list)
    samples_used: dict[str, list[int]] = Field(default_factory=dict)


class TracingSection(StageSection):
    """Structured tracing: per criterion and split, a layers × groups matrix of changes (pp)."""

    layers: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    k: int | None = None
    splits: list[str] = Field(default_factory=list)
    matrices: dict[str, dict[str, list[list[float | None]]]] = Field(default_factory=dict)
    artifacts: list[str] = Field(default_factory=list)
    seconds: float | None = None


class OverlapDirection(Record):
    histogram: list[int] = Field(default_factory=list)


class OverlapKind(Record):
    """One layer type: the artifact keeps each direction's ranks and histogram (``…_rank``),
    the summary copy only the histograms (``…_hist``)."""

    n_neurons: int | None = None
    top_gradient_by_magnitude_rank: OverlapDirection | None = None
    top_magnitude_by_gradient_rank: OverlapDirection | None = None
    top_gradient_by_magnitude_hist: list[int] = Field(default_factory=list)
    top_magnitude_by_gradient_hist: list[int] = Field(default_factory=list)


class OverlapSection(StageSection):
    bins: list[float] = Field(default_factory=list)
    top_percent: float | None = None
    kinds: dict[str, OverlapKind] = Field(default_factory=dict)
    artifacts: list[str] = Field(default_factory=list)


class FinetuneBefore(Record):
    source: str = ""
    splits: Splits = Field(default_factory=dict)


class FinetuneStart(Record):
    checkpoint: str = ""
    note: str = ""
    kick_in_epoch: int | None = None


class FinetuneEpoch(Record):
    epoch: int
    train_loss: float | None = None
    masked: str | None = None


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
    history: list[FinetuneEpoch] = Field(default_factory=list)


class DfrSection(StageSection):
    """Deep feature reweighting on the trained model's penultimate features."""

    method: str = ""
    base: str = ""
    selection: Selection | None = None
    splits: Splits = Field(default_factory=dict)
    wga_before: dict[str, float | None] = Field(default_factory=dict)
    wga_after: dict[str, float | None] = Field(default_factory=dict)
    checkpoint: str | None = None


class GradcamSection(StageSection):
    figure: str | None = None
    layer: str = ""
    output_index: int | None = None
    split: str = ""
    groups: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)  # the figure's columns (ERM, fine-tuned, …)


class MeanSE(Record):
    """Mean, sample std (n−1) and standard error over seeds."""

    mean: float | None = None
    se: float | None = None
    std: float | None = None
    n: int = 0


class RareScoreCell(Record):
    score: MeanSE = Field(default_factory=MeanSE)
    clean_acc: MeanSE = Field(default_factory=MeanSE)
    spurious_acc: MeanSE = Field(default_factory=MeanSE)
    p_value: float | None = None


class RareScoreSection(StageSection):
    """Paper B: spurious score vs the number of spurious examples, per pattern and n."""

    per_pattern: dict[str, dict[str, RareScoreCell]] = Field(default_factory=dict)
    epsilon: float | None = None
    target_class: int | None = None
    seeds: int | None = None
    models_trained: int | None = None


RARE_FIELDS = {  # stage name → RunSummary field (stage names have dashes, fields cannot)
    "rare-score": "rare_score",
    "rare-weights": "rare_weights",
    "rare-sensitivity": "rare_sensitivity",
    "rare-membership": "rare_membership",
    "rare-mitigations": "rare_mitigations",
    "rare-deletion": "rare_deletion",
    "rare-theory": "rare_theory",
}


class RunSummary(VersionedRecord):
    """``summary.json``: the run's numbers. ``splits``/``selection`` are the model's per-group
    accuracies at the selected epoch (filled by the ERM or model stage); every stage adds its
    section under its own name."""

    preset: str = ""
    variant: str = ""
    splits: Splits = Field(default_factory=dict)
    selection: Selection | None = None
    epochs: int | None = None  # epochs ERM trained (top level, as in version 0)
    erm: ErmSection | None = None
    model: ModelSection | None = None
    neurons: NeuronsSection | None = None
    tracing: TracingSection | None = None
    overlap: OverlapSection | None = None
    finetune: FinetuneSection | None = None
    dfr: DfrSection | None = None
    gradcam: GradcamSection | None = None
    rare_score: RareScoreSection | None = Field(default=None, alias="rare-score")
    rare_weights: GenericSection | None = Field(default=None, alias="rare-weights")
    rare_sensitivity: GenericSection | None = Field(default=None, alias="rare-sensitivity")
    rare_membership: GenericSection | None = Field(default=None, alias="rare-membership")
    rare_mitigations: GenericSection | None = Field(default=None, alias="rare-mitigations")
    rare_deletion: GenericSection | None = Field(default=None, alias="rare-deletion")
    rare_theory: GenericSection | None = Field(default=None, alias="rare-theory")

    def set_section(self, stage: str, section: Record) -> None:
        name = RARE_FIELDS.get(stage, stage)
        if name in type(self).model_fields:
            setattr(self, name, section)
        else:  # a stage this schema does not name: kept as an extra key
            extra = self.__pydantic_extra__
            assert extra is not None  # extra="allow"
            extra[stage] = section.to_json()

    def section(self, stage: str) -> Record | None:
        """The summary section of ``stage`` (by its ``stages = [...]`` name), if any."""
        name = RARE_FIELDS.get(stage, stage)
        value = getattr(self, name, None) if name in type(self).model_fields else None
        if isinstance(value, Record):
            return value
        extra = (self.__pydantic_extra__ or {}).get(stage)
        return GenericSection.model_validate(extra) if isinstance(extra, dict) else None

    def has_stage(self, stage: str) -> bool:
        if stage == "erm":
            return self.erm is not None
        return self.section(stage) is not None

    def stage_sections(self) -> Iterator[tuple[str, Record]]:
        """(stage name, section) of every stage this summary holds, in field order."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, StageSection | ErmSection):
                yield type(self).model_fields[name].alias or name, value
        for key, value in (self.__pydantic_extra__ or {}).items():
            if isinstance(value, dict):
                yield key, GenericSection.model_validate(value)

    def final_splits(self) -> tuple[Splits, str, Selection | None]:
        """The per-group accuracies a one-line listing shows: after fine-tuning when the run
        fine-tuned, else the selected epoch, else the model under study."""
        if self.finetune is not None and self.finetune.splits:
            return self.finetune.splits, "after fine-tuning", self.finetune.selection
        if self.splits:
            return self.splits, "selected epoch", self.selection
        if self.model is not None and self.model.splits:
            return self.model.splits, "model under study", None
        return {}, "", None

    def metric(self, path: str) -> float | None:
        """The number at a metric path: any summary key by ``.name`` / ``["key"]``
        (``splits.test.groups["landbird-water"]``, ``finetune.wga_after.test``), and the Stage I
        readouts by name: ``stage1.readouts["gradient@landbird-water/top3/zero"].train
        ["landbird-water"].delta_pp``. None when the run has no such number; ``ValueError``
        when the path cannot be read."""
        keys = parse_metric_path(path)
        node: JsonValue = self.to_json()
        if keys[0] == "stage1" and len(keys) > 1 and keys[1] == "readouts":
            node = {"readouts": _readout_view(self.neurons)} if self.neurons is not None else {}
            keys = keys[1:]
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        if isinstance(node, int | float) and not isinstance(node, bool):
            return float(node)
        return None

    def numbers(self) -> dict[str, float]:
        """Every number of the summary by its dotted path (``splits.test.wga`` …), the version
        field left out: what sweeps aggregate and ``runs compare`` lines up."""
        flat = flatten_numbers(self.to_json())
        flat.pop("schema_version", None)
        return flat


# -- metric paths -------------------------------------------------------------------------------

_PATH_TOKEN = re.compile(r"""\.?([A-Za-z_][\w-]*)|\[\s*"([^"]*)"\s*\]|\[\s*'([^']*)'\s*\]""")


def parse_metric_path(path: str) -> list[str]:
    """``stage1.readouts["gradient/top3/zero"].train["landbird-water"].delta_pp`` → its keys.
    Raises ``ValueError`` naming the first part that is not ``.name`` or ``["key"]``."""
    keys, at = [], 0
    text = path.strip()
    while at < len(text):
        match = _PATH_TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise ValueError(f'metric path {path!r}: cannot read {text[at:]!r} (expected .name or ["key"])')
        keys.append(next(g for g in match.groups() if g is not None))
        at = match.end()
    if not keys:
        raise ValueError("empty metric path")
    return keys


def _readout_view(section: NeuronsSection) -> dict[str, JsonValue]:
    """``readouts[key][split][group]`` → ``{"delta_pp", "spread_pp", "control_delta_pp",
    "control_spread_pp"}`` for every Stage I row (keys: ``readout_key``)."""
    view: dict[str, JsonValue] = {}
    for key, row in section.readouts().items():
        per_split: dict[str, JsonValue] = {}
        for split, deltas in row.delta_pp.items():
            per_split[split] = {
                group: {
                    "delta_pp": value,
                    "spread_pp": row.spread_pp.get(split, {}).get(group),
                    "control_delta_pp": row.control_delta_pp.get(split, {}).get(group),
                    "control_spread_pp": row.control_spread_pp.get(split, {}).get(group),
                }
                for group, value in deltas.items()
            }
        view[key] = per_split
    return view


# -- manifest.json --------------------------------------------------------------------------------


class SessionSetup(Record):
    """What the console's Setup screen opened the session on."""

    dataset: str = ""
    data_root: str = ""
    backbone: str = ""
    checkpoint: str = ""
    device: str = "auto"


class CheckGroup(Record):
    group: str = ""
    index: int | None = None
    found: int | None = None
    expected: int | None = None
    difference: int | None = None


class CheckSplit(Record):
    groups: list[CheckGroup] = Field(default_factory=list)
    found: int | None = None
    expected: int | None = None


class DatasetCheck(Record):
    """The group-count check attached to a loaded dataset (``engine.data.check``): found vs
    published per split and group for real datasets, plain ``counts`` for embedded ones."""

    dataset: str | None = None
    layout: str | None = None
    splits: dict[str, CheckSplit] = Field(default_factory=dict)
    counts: dict[str, list[int] | int] = Field(default_factory=dict)
    verdict: str = ""
    max_per_split: int | None = None
    used_counts: dict[str, list[int]] = Field(default_factory=dict)
    ok: bool | None = None  # check-data: the folder would load and its images decode
    problems: list[str] = Field(default_factory=list)


class DatasetInfo(Record):
    name: str = ""
    layout: str = ""
    root: str | None = None


class ExecutorInfo(Record):
    """Where a run ran (``labconsole.engine.executors.where_am_i``)."""

    kind: str = "local"
    host: str | None = None
    cuda_visible_devices: str | None = None
    slurm_job_id: str | None = None
    partition: str | None = None


class Manifest(VersionedRecord):
    """``manifest.json``: what ran, where, with which versions, and how far it got."""

    preset: str = ""
    reproduces: str = ""
    variant: str = ""
    stages: list[str] = Field(default_factory=list)
    seed: int = 0
    smoke: bool = False
    status: str = "running"
    stages_done: list[str] = Field(default_factory=list)
    created: str = ""
    finished: str | None = None
    error: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    git: str | None = None
    device: str = ""
    host: str = ""
    # torch.get_num_threads() when the run started: float sums depend on it, so a resume with
    # another count is warned about. None in runs made before it was recorded.
    torch_threads: int | None = None
    metric_definitions: dict[str, str] = Field(default_factory=dict)
    selection_rule: str = ""
    dataset_check: DatasetCheck | None = None
    dataset: DatasetInfo | None = None
    executor: ExecutorInfo | None = None
    # A console session record (``engine.stage1.session_record``) is a run directory of kind
    # "console-session": the model it was opened on and its groups instead of stages.
    kind: str | None = None
    model: SessionSetup | None = None
    backbone: str | None = None
    group_names: list[str] = Field(default_factory=list)
    train_group_counts: dict[str, int] = Field(default_factory=dict)
    minority_groups: list[str] = Field(default_factory=list)


class EpochRecord(Record):
    """An ``EpochResult`` line of ``metrics.jsonl``: one epoch's evaluation."""

    stage: str = "?"
    epoch: int = 0
    total_epochs: int | None = None
    splits: Splits = Field(default_factory=dict)
    train_loss: float | None = None
    lr: float | None = None
    is_best: bool = False
    best_epoch: int | None = None
    selection: str = ""


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


# -- the console's session record ---------------------------------------------------------------


class ConsoleReadout(Record):
    """One intervention the user read out in the console, with the ranking it came from."""

    created: str = ""
    criterion: str | None = None
    ranked_group: str | None = None
    scope: str | None = None
    k: float | None = None
    std: float | None = None
    seeds: int = 1
    readout: Readout


class ConsoleSession(VersionedRecord):
    """A console session saved to a file: its setup, rankings and readouts."""

    created: str = ""
    setup: SessionSetup = Field(default_factory=SessionSetup)
    group_names: list[str] = Field(default_factory=list)
    train_group_counts: dict[str, int] = Field(default_factory=dict)
    rankings: list[Ranking] = Field(default_factory=list)
    readouts: list[ConsoleReadout] = Field(default_factory=list)


# -- reading and writing --------------------------------------------------------------------------

R = TypeVar("R", bound=VersionedRecord)


def flatten_numbers(obj: object, prefix: str = "") -> dict[str, float]:
    """``{"splits": {"test": {"wga": 0.5}}}`` → ``{"splits.test.wga": 0.5}`` (finite numbers
    and None-free; booleans are not numbers)."""
    out: dict[str, float] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(flatten_numbers(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, int | float) and not isinstance(obj, bool) and math.isfinite(obj):
        out[prefix] = float(obj)
    return out


def validate_record(model: type[R], data: object, source: str) -> R:
    """``data`` (parsed JSON) as ``model``, or ``RunFormatError`` naming ``source``, its
    schema version and the first fields that do not fit."""
    if not isinstance(data, dict):
        raise RunFormatError(f"{source}: holds a {type(data).__name__}, expected a JSON object")
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise RunFormatError(f"{source}: schema_version {version!r} is not an integer")
    if version > SCHEMA_VERSION:
        raise RunFormatError(
            f"{source}: schema version {version} is newer than this labconsole reads "
            f"(versions 0–{SCHEMA_VERSION}); upgrade labconsole to read it"
        )
    try:
        return model.model_validate({**data, "schema_version": version})
    except ValidationError as exc:
        problems = "; ".join(f"`{'.'.join(str(p) for p in err['loc'])}`: {err['msg']}" for err in exc.errors()[:3])
        raise RunFormatError(
            f"{source}: does not fit the schema-version-{version} {model.__name__} record ({problems})"
        ) from None


def read_record(model: type[R], path: Path, *, missing_ok: bool = True) -> R:
    """The record in ``path``; an empty one when the file does not exist and ``missing_ok``."""
    if not path.exists():
        if missing_ok:
            return model()
        raise RunFormatError(f"{path}: missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFormatError(f"{path}: not valid JSON ({exc})") from None
    return validate_record(model, data, str(path))


class StageResultError(RuntimeError):
    """A stage returned a result that does not fit its record: a bug in that stage."""


S = TypeVar("S", bound=StageSection)


def validate_section(model: type[S], result: Mapping[str, object], source: str) -> S:
    try:
        return model.model_validate(dict(result))
    except ValidationError as exc:
        problems = "; ".join(f"`{'.'.join(str(p) for p in err['loc'])}`: {err['msg']}" for err in exc.errors()[:3])
        raise StageResultError(f"{source}: its result does not fit {model.__name__} ({problems})") from None


def validate_leniently(model: type[R], data: object, source: str) -> tuple[R, list[str]]:
    """Like ``validate_record``, but a part that does not fit is left out (and named in the
    returned problems) instead of losing the whole file: a report still shows the rest. A
    newer schema version still gives nothing but the problem."""
    try:
        return validate_record(model, data, source), []
    except RunFormatError as exc:
        if not isinstance(data, dict) or "does not fit" not in str(exc):
            return model(), [str(exc)]
    kept = json.loads(json.dumps(data))  # a copy to cut the misfits from
    version = kept.get("schema_version", 0)
    problems: list[str] = []
    while True:
        try:
            return model.model_validate({**kept, "schema_version": version}), problems
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]][:2]
                if _drop(kept, loc):
                    problems.append(
                        f"could not read {source} `{'.'.join(loc)}` (schema version {version}): {err['msg']}"
                    )
                    break
            else:
                return model(), [*problems, f"could not read {source} (schema version {version})"]


def _drop(tree: dict[str, object], loc: list[str]) -> bool:
    node: object = tree
    for key in loc[:-1]:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    if isinstance(node, dict) and loc[-1] in node:
        del node[loc[-1]]
        return True
    if isinstance(node, list) and loc[-1].isdigit() and int(loc[-1]) < len(node):
        del node[int(loc[-1])]
        return True
    return False
