"""``summary.json``: the run's top-level numbers and one section per stage."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field, JsonValue

from labconsole.engine.records.base import (
    Record,
    Selection,
    Splits,
    VersionedRecord,
    flatten_numbers,
    parse_metric_path,
)
from labconsole.engine.records.finetune import DfrSection, FinetuneSection
from labconsole.engine.records.rare import (
    RareDeletionSection,
    RareMembershipSection,
    RareMitigationsSection,
    RareSensitivitySection,
    RareTheorySection,
    RareWeightsSection,
)
from labconsole.engine.records.sections import (
    ErmSection,
    GenericSection,
    GradcamSection,
    ModelSection,
    NeuronsSection,
    OverlapSection,
    RareScoreSection,
    StageSection,
    TracingSection,
)

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
    rare_weights: RareWeightsSection | None = Field(default=None, alias="rare-weights")
    rare_sensitivity: RareSensitivitySection | None = Field(default=None, alias="rare-sensitivity")
    rare_membership: RareMembershipSection | None = Field(default=None, alias="rare-membership")
    rare_mitigations: RareMitigationsSection | None = Field(default=None, alias="rare-mitigations")
    rare_deletion: RareDeletionSection | None = Field(default=None, alias="rare-deletion")
    rare_theory: RareTheorySection | None = Field(default=None, alias="rare-theory")

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
