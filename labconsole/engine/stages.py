"""The stages a preset can list in ``stages = [...]``.

Each ``Stage`` names its function (it takes a StageContext and returns the stage's result as
JSON-ready data) and the record that result is validated as (``labconsole.engine.records``).
The record's ``enter`` says how the result goes into ``summary.json``: under the stage's name,
and for ``erm`` and ``model`` also as the run's top-level accuracies. ``run_job`` itself knows
no stage by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from labconsole.engine import records
from labconsole.engine.context import StageContext
from labconsole.engine.rare import stages as rare
from labconsole.engine.stage1 import stages as stage1
from labconsole.engine.stage1 import tracing
from labconsole.engine.train import dfr, erm, finetune, gradcam
from labconsole.errors import PresetError

# A stage returns its record, or JSON-ready data that is validated as the record.
StageFunction = Callable[[StageContext], Mapping[str, object] | records.StageSection]


@dataclass(frozen=True)
class Stage:
    name: str
    run: StageFunction
    record: type[records.StageSection]

    def result(self, ctx: StageContext) -> records.StageSection:
        """Run the stage and check its result against its record (a misfit fails here, where
        it is produced, not later in a report)."""
        produced = self.run(ctx)
        if isinstance(produced, records.StageSection):
            if not isinstance(produced, self.record):
                raise records.StageResultError(
                    f"stage {self.name}: returned a {type(produced).__name__}, expected {self.record.__name__}"
                )
            return produced
        return records.validate_section(self.record, produced, f"stage {self.name}")


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("erm", erm.train_erm, records.ErmResult),
        Stage("rare-score", rare.run_score_stage, records.RareScoreSection),
        Stage("rare-weights", rare.run_weights_stage, records.RareWeightsSection),
        Stage("rare-sensitivity", rare.run_sensitivity_stage, records.RareSensitivitySection),
        Stage("rare-membership", rare.run_membership_stage, records.RareMembershipSection),
        Stage("rare-mitigations", rare.run_mitigations_stage, records.RareMitigationsSection),
        Stage("rare-deletion", rare.run_deletion_stage, records.RareDeletionSection),
        Stage("rare-theory", rare.run_theory_stage, records.RareTheorySection),
        Stage("model", stage1.run_model_stage, records.ModelSection),
        Stage("neurons", stage1.run_neurons_stage, records.NeuronsSection),
        Stage("tracing", tracing.run_tracing_stage, records.TracingSection),
        Stage("overlap", tracing.run_overlap_stage, records.OverlapSection),
        Stage("finetune", finetune.run_finetune_stage, records.FinetuneSection),
        Stage("dfr", dfr.run_dfr_stage, records.DfrSection),
        Stage("gradcam", gradcam.run_gradcam_stage, records.GradcamSection),
    )
}


def get_stage(name: str) -> Stage:
    try:
        return STAGES[name]
    except KeyError:
        raise PresetError(f"unknown stage {name!r} in `stages` (known: {', '.join(sorted(STAGES))})") from None


def stage_function(name: str) -> StageFunction:
    """The function of stage ``name`` (tests call stages one by one)."""
    return get_stage(name).run
