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

from labconsole.engine.records.base import (
    SCHEMA_VERSION as SCHEMA_VERSION,
)
from labconsole.engine.records.base import (
    GroupValues as GroupValues,
)
from labconsole.engine.records.base import (
    JsonScalar as JsonScalar,
)
from labconsole.engine.records.base import (
    MeanSE as MeanSE,
)
from labconsole.engine.records.base import (
    NeuronEntry as NeuronEntry,
)
from labconsole.engine.records.base import (
    PerSplit as PerSplit,
)
from labconsole.engine.records.base import (
    R as R,
)
from labconsole.engine.records.base import (
    Record as Record,
)
from labconsole.engine.records.base import (
    RunFormatError as RunFormatError,
)
from labconsole.engine.records.base import (
    Selection as Selection,
)
from labconsole.engine.records.base import (
    SplitMetrics as SplitMetrics,
)
from labconsole.engine.records.base import (
    Splits as Splits,
)
from labconsole.engine.records.base import (
    VersionedRecord as VersionedRecord,
)
from labconsole.engine.records.base import (
    flatten_numbers as flatten_numbers,
)
from labconsole.engine.records.base import (
    parse_metric_path as parse_metric_path,
)
from labconsole.engine.records.base import (
    read_record as read_record,
)
from labconsole.engine.records.base import (
    validate_leniently as validate_leniently,
)
from labconsole.engine.records.base import (
    validate_record as validate_record,
)
from labconsole.engine.records.console import (
    ConsoleReadout as ConsoleReadout,
)
from labconsole.engine.records.console import (
    ConsoleSession as ConsoleSession,
)
from labconsole.engine.records.console import (
    RankingLine as RankingLine,
)
from labconsole.engine.records.console import (
    SessionLine as SessionLine,
)
from labconsole.engine.records.console import (
    SessionManifest as SessionManifest,
)
from labconsole.engine.records.console import (
    parse_session_line as parse_session_line,
)
from labconsole.engine.records.evidence import (
    Evidence as Evidence,
)
from labconsole.engine.records.evidence import (
    GroupFlips as GroupFlips,
)
from labconsole.engine.records.evidence import (
    Signature as Signature,
)
from labconsole.engine.records.finetune import (
    DfrSection as DfrSection,
)
from labconsole.engine.records.finetune import (
    FinetuneBefore as FinetuneBefore,
)
from labconsole.engine.records.finetune import (
    FinetuneControl as FinetuneControl,
)
from labconsole.engine.records.finetune import (
    FinetuneEpoch as FinetuneEpoch,
)
from labconsole.engine.records.finetune import (
    FinetuneSection as FinetuneSection,
)
from labconsole.engine.records.finetune import (
    FinetuneStart as FinetuneStart,
)
from labconsole.engine.records.manifest import (
    CheckGroup as CheckGroup,
)
from labconsole.engine.records.manifest import (
    CheckSplit as CheckSplit,
)
from labconsole.engine.records.manifest import (
    DatasetCheck as DatasetCheck,
)
from labconsole.engine.records.manifest import (
    DatasetInfo as DatasetInfo,
)
from labconsole.engine.records.manifest import (
    EpochRecord as EpochRecord,
)
from labconsole.engine.records.manifest import (
    ExecutorInfo as ExecutorInfo,
)
from labconsole.engine.records.manifest import (
    Manifest as Manifest,
)
from labconsole.engine.records.manifest import (
    SessionSetup as SessionSetup,
)
from labconsole.engine.records.measured_evidence import (
    MeasuredEvidence as MeasuredEvidence,
)
from labconsole.engine.records.rare import (
    AuthorsCase as AuthorsCase,
)
from labconsole.engine.records.rare import (
    AuthorsVersusExact as AuthorsVersusExact,
)
from labconsole.engine.records.rare import (
    MeasureStats as MeasureStats,
)
from labconsole.engine.records.rare import (
    MitigationCell as MitigationCell,
)
from labconsole.engine.records.rare import (
    MitigationMeans as MitigationMeans,
)
from labconsole.engine.records.rare import (
    MonteCarloCheck as MonteCarloCheck,
)
from labconsole.engine.records.rare import (
    MonteCarloQuantity as MonteCarloQuantity,
)
from labconsole.engine.records.rare import (
    NormCorrelation as NormCorrelation,
)
from labconsole.engine.records.rare import (
    RareDeletionArtifact as RareDeletionArtifact,
)
from labconsole.engine.records.rare import (
    RareDeletionSection as RareDeletionSection,
)
from labconsole.engine.records.rare import (
    RareMembershipArtifact as RareMembershipArtifact,
)
from labconsole.engine.records.rare import (
    RareMembershipSection as RareMembershipSection,
)
from labconsole.engine.records.rare import (
    RareMitigationsArtifact as RareMitigationsArtifact,
)
from labconsole.engine.records.rare import (
    RareMitigationsSection as RareMitigationsSection,
)
from labconsole.engine.records.rare import (
    RareScoreArtifact as RareScoreArtifact,
)
from labconsole.engine.records.rare import (
    RareScoreArtifactCell as RareScoreArtifactCell,
)
from labconsole.engine.records.rare import (
    RareScoreRun as RareScoreRun,
)
from labconsole.engine.records.rare import (
    RareSensitivityArtifact as RareSensitivityArtifact,
)
from labconsole.engine.records.rare import (
    RareSensitivitySection as RareSensitivitySection,
)
from labconsole.engine.records.rare import (
    RareTheoryArtifact as RareTheoryArtifact,
)
from labconsole.engine.records.rare import (
    RareTheorySection as RareTheorySection,
)
from labconsole.engine.records.rare import (
    RareWeightsArtifact as RareWeightsArtifact,
)
from labconsole.engine.records.rare import (
    RareWeightsRow as RareWeightsRow,
)
from labconsole.engine.records.rare import (
    RareWeightsSection as RareWeightsSection,
)
from labconsole.engine.records.rare import (
    TheoryCurve as TheoryCurve,
)
from labconsole.engine.records.sections import (
    ErmResult as ErmResult,
)
from labconsole.engine.records.sections import (
    ErmSection as ErmSection,
)
from labconsole.engine.records.sections import (
    GenericSection as GenericSection,
)
from labconsole.engine.records.sections import (
    GradcamSection as GradcamSection,
)
from labconsole.engine.records.sections import (
    ModelSection as ModelSection,
)
from labconsole.engine.records.sections import (
    NeuronsRow as NeuronsRow,
)
from labconsole.engine.records.sections import (
    NeuronsSection as NeuronsSection,
)
from labconsole.engine.records.sections import (
    OverlapDirection as OverlapDirection,
)
from labconsole.engine.records.sections import (
    OverlapKind as OverlapKind,
)
from labconsole.engine.records.sections import (
    OverlapSection as OverlapSection,
)
from labconsole.engine.records.sections import (
    Ranking as Ranking,
)
from labconsole.engine.records.sections import (
    RareScoreCell as RareScoreCell,
)
from labconsole.engine.records.sections import (
    RareScoreSection as RareScoreSection,
)
from labconsole.engine.records.sections import (
    Readout as Readout,
)
from labconsole.engine.records.sections import (
    ReadoutRow as ReadoutRow,
)
from labconsole.engine.records.sections import (
    ReadoutsArtifact as ReadoutsArtifact,
)
from labconsole.engine.records.sections import (
    ReadoutSplit as ReadoutSplit,
)
from labconsole.engine.records.sections import (
    S as S,
)
from labconsole.engine.records.sections import (
    StageResultError as StageResultError,
)
from labconsole.engine.records.sections import (
    StageSection as StageSection,
)
from labconsole.engine.records.sections import (
    TracingSection as TracingSection,
)
from labconsole.engine.records.sections import (
    readout_key as readout_key,
)
from labconsole.engine.records.sections import (
    validate_section as validate_section,
)
from labconsole.engine.records.summary import (
    RARE_FIELDS as RARE_FIELDS,
)
from labconsole.engine.records.summary import (
    RunSummary as RunSummary,
)
from labconsole.engine.records.sweep import (
    Combination as Combination,
)
from labconsole.engine.records.sweep import (
    IncompleteRun as IncompleteRun,
)
from labconsole.engine.records.sweep import (
    Point as Point,
)
from labconsole.engine.records.sweep import (
    RunCounts as RunCounts,
)
from labconsole.engine.records.sweep import (
    SweepAggregate as SweepAggregate,
)
from labconsole.engine.records.sweep import (
    SweepIndex as SweepIndex,
)
from labconsole.engine.records.sweep import (
    SweepPoint as SweepPoint,
)
