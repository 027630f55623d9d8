"""What each stage adds to ``summary.json`` (and Stage I's readouts and rankings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from pydantic import Field, ValidationError

from labconsole.engine.records.base import (
    GroupValues,
    MeanSE,
    NeuronEntry,
    PerSplit,
    Record,
    Selection,
    Splits,
    VersionedRecord,
)
from labconsole.engine.records.evidence import Evidence

if TYPE_CHECKING:
    from labconsole.engine.records.summary import RunSummary

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
    change and its spread over seeds or control draws (percentage points). An estimate's split
    (``Readout.is_estimate``) also has per group the 95 % interval of the change (``ci_pp``,
    [lo, hi] pp), the images its subsample held (``sampled``) and the group's size (``of``)."""

    baseline: GroupValues = Field(default_factory=dict)
    after: GroupValues = Field(default_factory=dict)
    delta_pp: GroupValues = Field(default_factory=dict)
    spread_pp: GroupValues = Field(default_factory=dict)
    ci_pp: dict[str, list[float] | None] = Field(default_factory=dict)
    sampled: dict[str, int] = Field(default_factory=dict)
    of: dict[str, int] = Field(default_factory=dict)

    def worst_delta(self) -> float | None:
        """The most negative change over the groups the split has (None: no group has one)."""
        present = [d for d in self.delta_pp.values() if d is not None]
        return min(present) if present else None


class Readout(Record):
    """``Session.readout``'s result: an intervention's effect per split, with its control.

    ``splits`` and ``control`` map a split to its ``ReadoutSplit``; ``control_neurons`` holds
    the neurons of each control draw. A progressive readout first sends its estimate: the same
    record with ``estimate = True`` and the interval fields filled per split. The exact result
    keeps that estimate's ``splits`` and ``control`` in ``estimate`` (a ``Readout``) and the
    time it took in ``seconds_to_estimate``. ``control_kind`` and ``evidence`` are set where
    the control came from ``evidence.evidence_readout`` (its p, signature and flips)."""

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
    estimate: bool | Readout = False
    seconds_to_estimate: float | None = None
    control_kind: str = "layer-matched"
    evidence: Evidence | None = None

    @property
    def is_estimate(self) -> bool:
        """True for the first numbers of a progressive readout (a subsample, with intervals)."""
        return self.estimate is True

    @property
    def first_estimate(self) -> Readout | None:
        """The estimate an exact progressive readout sent first (None: it sent none)."""
        return self.estimate if isinstance(self.estimate, Readout) else None

    def split(self, name: str) -> ReadoutSplit:
        """The readout of split ``name`` (an empty one where it was not read out)."""
        return self.splits.get(name) or ReadoutSplit()

    def control_split(self, name: str) -> ReadoutSplit | None:
        """The control's readout of split ``name`` (None without a control there)."""
        return (self.control or {}).get(name)

    def group_names(self) -> list[str]:
        """The groups, in the order the first split lists them."""
        first = next(iter(self.splits.values()), None)
        return list(first.baseline) if first is not None else []


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
    score: str = "paper"  # the ranking's score: "paper" or "specific"
    control_kind: str | None = None  # "layer-matched" or "anywhere"; set with the row's evidence
    control_draws: int | None = None

    @property
    def key(self) -> str:
        return readout_key(self.criterion, self.ranked_group, self.k, self.percent, self.mode, self.std, self.where)


class ReadoutRow(Readout):
    """A full Stage I readout row (``artifacts/stage1_readouts.json``): the selection plus the
    readout (its ``neurons`` are the readout's own, without the ranking's scores)."""

    criterion: str = ""
    score: str = "paper"
    ranked_group: str | None = None
    k: int | None = None
    percent: float | None = None

    def compact(self) -> NeuronsRow:
        """The row as summary.json ``neurons.rows`` keeps it; with evidence, its p, signature
        and flip counts ([to wrong, to right] per split and group) too."""
        control = self.control or {}
        extra: dict[str, object] = {}
        found = self.evidence
        if found is not None:
            sig = found.signature
            extra = {
                "control_kind": self.control_kind,
                "control_draws": found.draws,
                "p": found.p,
                "signature_pp": sig.critical_pp if sig else None,
                "signature_p": sig.p if sig else None,
                "signature_verdict": sig.verdict if sig else None,
                "flip_counts": {
                    s: {g: [f.n_to_wrong, f.n_to_right] for g, f in per.items()} for s, per in found.flips.items()
                },
            }
        return NeuronsRow(
            label=self.label,
            criterion=self.criterion,
            score=self.score,
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
            **extra,
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


class GradcamSection(StageSection):
    figure: str | None = None  # runs before the report drew GradCAM panels from the arrays
    artifacts: list[str] = Field(default_factory=list)
    arrays: str | None = None  # the NPZ of images and maps the report draws
    layer: str = ""
    output_index: int | None = None
    split: str = ""
    groups: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)  # the figure's columns (ERM, fine-tuned, …)
    labels: list[str] = Field(default_factory=list)  # artifacts/gradcam.json: group and predictions per image


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


class StageResultError(RuntimeError):
    """A stage returned a result that does not fit its record: a bug in that stage."""


S = TypeVar("S", bound=StageSection)


def validate_section(model: type[S], result: Mapping[str, object], source: str) -> S:
    try:
        return model.model_validate(dict(result))
    except ValidationError as exc:
        problems = "; ".join(f"`{'.'.join(str(p) for p in err['loc'])}`: {err['msg']}" for err in exc.errors()[:3])
        raise StageResultError(f"{source}: its result does not fit {model.__name__} ({problems})") from None
