"""The rare-lab stages' artifacts (``artifacts/rare_*.json``): Paper B's network experiments,
and the sections those stages add to ``summary.json`` (``rare-weights`` … ``rare-theory``; the
``rare-score`` section is ``sections.RareScoreSection``).

Older files have no ``schema_version`` (version 0, the same keys). Statistics over seeds are
``MeanSE``; a missing statistic is ``None`` (never a bare ``{}``)."""

from __future__ import annotations

from pydantic import Field

from labconsole.engine.records.base import JsonScalar, MeanSE, Record, VersionedRecord
from labconsole.engine.records.sections import StageSection

# The training recipe as the artifact records it (``Recipe`` fields; milestones as a list).
RecipeFields = dict[str, JsonScalar | list[int]]


class RareScoreArtifactCell(Record):
    """One pattern at one n: each measure's mean ± s.e. over seeds, and Welch's p against n = 0."""

    score: MeanSE | None = None
    clean_acc: MeanSE | None = None
    spurious_acc: MeanSE | None = None
    p_value: float | None = None

    def measure(self, key: str) -> MeanSE | None:
        value = getattr(self, key, None)
        return value if isinstance(value, MeanSE) else None


class RareScoreRun(Record):
    """One trained model of the score study."""

    pattern: str = ""
    n: int = 0
    seed: int | None = None
    score: float | None = None
    clean_acc: float | None = None
    spurious_acc: float | None = None


class NormCorrelation(Record):
    r: float | None = None
    p_value: float | None = None
    patterns: list[str] = Field(default_factory=list)


class RareScoreArtifact(VersionedRecord):
    """``artifacts/rare_score.json``."""

    dataset: str | None = None
    target_class: int | None = None
    epsilon: float | None = None
    seeds: list[int] = Field(default_factory=list)
    n_values: list[int] = Field(default_factory=list)
    recipe: RecipeFields = Field(default_factory=dict)
    model_parameters: dict[str, int] = Field(default_factory=dict)
    per_pattern: dict[str, dict[str, RareScoreArtifactCell]] = Field(default_factory=dict)
    pattern_norm: dict[str, MeanSE] = Field(default_factory=dict)
    norm_score_correlation: NormCorrelation | None = None
    runs: list[RareScoreRun] = Field(default_factory=list)


class RareWeightsRow(Record):
    """One model's pixel importance: means inside and outside the pattern, and the map."""

    n: int | None = None
    pattern_region_mean: float | None = None
    elsewhere_mean: float | None = None
    map: list[list[float]] | None = None


class RareWeightsArtifact(VersionedRecord):
    """``artifacts/rare_weights.json``."""

    pattern: str | None = None
    seed: int | None = None
    recipe: RecipeFields = Field(default_factory=dict)
    model_parameters: dict[str, int] = Field(default_factory=dict)
    importance: str | None = None
    definition: str | None = None
    rows: list[RareWeightsRow] = Field(default_factory=list)


class RareSensitivityArtifact(VersionedRecord):
    """``artifacts/rare_sensitivity.json``: per backbone, the mean true-class probability at
    each fraction of zeroed pixels."""

    fractions: list[float] = Field(default_factory=list)
    true_class_probability: dict[str, list[float]] = Field(default_factory=dict)
    split: str = "train"
    recipe: RecipeFields = Field(default_factory=dict)
    model_parameters: dict[str, int] = Field(default_factory=dict)


class MembershipRun(Record):
    """One seed's attack on the target model trained with n spurious examples (fractions)."""

    n: int
    seed: int
    accuracy: float | None = None
    member_accuracy: float | None = None
    non_member_accuracy: float | None = None
    balanced_accuracy: float | None = None
    auc: float | None = None
    spurious_member_accuracy: float | None = None
    patterned_non_member_accuracy: float | None = None
    best_c: float | None = None
    shadow_accuracy: float | None = None

    def measure(self, key: str) -> float | None:
        value = getattr(self, key, None)
        return float(value) if isinstance(value, int | float) else None


class RareMembershipArtifact(VersionedRecord):
    """``artifacts/rare_membership.json``: the attack's measures per n (mean ± s.e. over seeds)."""

    pattern: str | None = None
    seeds: list[int] = Field(default_factory=list)
    recipe: RecipeFields = Field(default_factory=dict)
    model_parameters: dict[str, int] = Field(default_factory=dict)
    split_sizes: dict[str, int] = Field(default_factory=dict)
    features: str | None = None
    attack: str = "?"
    patterned_non_members: str | None = None
    per_n: dict[str, dict[str, MeanSE]] = Field(default_factory=dict)
    runs: list[MembershipRun] = Field(default_factory=list)


class MeasureStats(Record):
    """The three spurious-score measures, each mean ± s.e. over seeds (absent: ``None``)."""

    score: MeanSE | None = None
    clean_acc: MeanSE | None = None
    spurious_acc: MeanSE | None = None

    def measure(self, key: str) -> MeanSE | None:
        value = getattr(self, key, None)
        return value if isinstance(value, MeanSE) else None


class MitigationCell(MeasureStats):
    """One mitigation at one strength (0 = the method off)."""

    strength: float


class RareMitigationsArtifact(VersionedRecord):
    """``artifacts/rare_mitigations.json``: per method, the measures at each strength, and the
    n = 0 model without mitigation as the reference line."""

    pattern: str | None = None
    n: int | None = None
    seeds: list[int] = Field(default_factory=list)
    recipe: RecipeFields = Field(default_factory=dict)
    model_parameters: dict[str, int] = Field(default_factory=dict)
    reference_n0: MeasureStats | None = None
    methods: dict[str, list[MitigationCell]] = Field(default_factory=dict)


class DeletionRun(Record):
    """One seed at one n: the measures of each model (``spurious_measures``)."""

    n: int
    seed: int
    before: dict[str, float] = Field(default_factory=dict)
    after: dict[str, float] = Field(default_factory=dict)
    retrained_from_scratch: dict[str, float] = Field(default_factory=dict)


class RareDeletionArtifact(VersionedRecord):
    """``artifacts/rare_deletion.json``: per n, the measures before deletion, after incremental
    retraining and for a model trained without the deleted rows."""

    pattern: str | None = None
    method: str | None = None
    reference: str | None = None
    # int | float keeps the number as written (a learning rate of 1 prints as 1, not 1.0)
    deletion_lr: int | float | None = None
    deletion_epochs: int | None = None
    recipe: RecipeFields = Field(default_factory=dict)
    model_parameters: dict[str, int] = Field(default_factory=dict)
    training_lr: int | float | str = "?"
    training_epochs: int | str = "?"
    seeds: list[int] = Field(default_factory=list)
    n_values: list[int] = Field(default_factory=list)
    per_n: dict[str, dict[str, MeasureStats]] = Field(default_factory=dict)
    runs: list[DeletionRun] = Field(default_factory=list)


# Numbers of the theory artifact keep their JSON type (int | float), as the report prints them.
Number = int | float | None


class TheoryCurve(Record):
    """Exact toy-model quantities along a γ grid (one list per quantity, aligned with ``gamma``)."""

    gamma: list[float] = Field(default_factory=list)
    prediction_difference: list[Number] | None = None
    clean_acc: list[Number] | None = None
    spurious_acc: list[Number] | None = None
    authors_clean_acc: list[Number] | None = None
    authors_spurious_acc: list[Number] | None = None

    def values(self, key: str) -> list[Number] | None:
        value = getattr(self, key, None)
        return value if isinstance(value, list) else None


class MonteCarloQuantity(Record):
    exact: Number = None
    mc_mean: Number = None
    mc_se: Number = None
    abs_error: Number = None


class MonteCarloCheck(Record):
    """A Monte-Carlo ridge fit checked against the exact solution, for one model convention:
    per quantity the exact value, the mean over ``repeats`` fits, its s.e. and the error."""

    samples: int | None = None
    repeats: int | None = None
    max_noise_dim_weight: float | None = None  # the largest weight on a noise-only dimension
    quantities: dict[str, MonteCarloQuantity] = Field(default_factory=dict)


class AuthorsCase(Record):
    """The authors' closed forms next to the exact solution, for one case."""

    exact: dict[str, Number] = Field(default_factory=dict)
    closed_form: dict[str, Number] = Field(default_factory=dict)


class RareTheoryArtifact(VersionedRecord):
    """``artifacts/rare_theory.json``: ridge regression on Paper B's toy model (§5, App. A)."""

    parameters: dict[str, JsonScalar] = Field(default_factory=dict)
    monte_carlo: dict[str, MonteCarloCheck] = Field(default_factory=dict)
    gamma_curve: TheoryCurve | None = None
    noise_curves: dict[str, TheoryCurve] = Field(default_factory=dict)
    lam_curves: dict[str, TheoryCurve] = Field(default_factory=dict)
    authors_comparison: dict[str, AuthorsCase] = Field(default_factory=dict)

    def curves(self, key: str) -> dict[str, TheoryCurve]:
        """``noise_curves`` or ``lam_curves``."""
        return self.noise_curves if key == "noise_curves" else self.lam_curves if key == "lam_curves" else {}


# -- summary.json sections of the rare-lab stages -----------------------------------------------
# Keys are n (or a model convention) as text, as JSON objects need; only the fields a stage sets
# are written, so each section keeps the keys the stage has always written.


class RareWeightsSection(StageSection):
    """``rare-weights``: mean pixel importance inside the pattern and elsewhere, per n; or only
    ``skipped`` (why) when the backbone has no input Linear layer."""

    pattern: str | None = None
    pattern_region_mean: dict[str, float | None] = Field(default_factory=dict)
    elsewhere_mean: dict[str, float | None] = Field(default_factory=dict)
    skipped: str | None = None


class RareSensitivitySection(StageSection):
    """``rare-sensitivity``: per backbone, the mean true-class probability at each fraction."""

    fractions: list[float] = Field(default_factory=list)
    true_class_probability: dict[str, list[float]] = Field(default_factory=dict)


class RareMembershipSection(StageSection):
    """``rare-membership``: per n, the attack's measures (mean ± s.e. over seeds)."""

    pattern: str | None = None
    split_sizes: dict[str, int] = Field(default_factory=dict)
    accuracy: dict[str, MeanSE] = Field(default_factory=dict)
    spurious_member_accuracy: dict[str, MeanSE] = Field(default_factory=dict)
    patterned_non_member_accuracy: dict[str, MeanSE] = Field(default_factory=dict)
    balanced_accuracy: dict[str, MeanSE] = Field(default_factory=dict)
    auc: dict[str, MeanSE] = Field(default_factory=dict)


class MitigationMeans(Record):
    """One mitigation at one strength: each measure's mean over seeds."""

    strength: float
    score: float | None = None
    clean_acc: float | None = None
    spurious_acc: float | None = None


class RareMitigationsSection(StageSection):
    """``rare-mitigations``: per method, the measures' means at each strength."""

    pattern: str | None = None
    n: int | None = None
    methods: dict[str, list[MitigationMeans]] = Field(default_factory=dict)


class RareDeletionSection(StageSection):
    """``rare-deletion``: per n, the mean spurious score before deletion, after incremental
    retraining and retrained from scratch without the deleted rows."""

    pattern: str | None = None
    deletion_lr: float | None = None
    deletion_epochs: int | None = None
    score: dict[str, dict[str, float | None]] = Field(default_factory=dict)


class AuthorsVersusExact(Record):
    """The authors' closed-form accuracies next to the exact ones, for one case."""

    exact_clean: Number = None
    closed_clean: Number = None
    exact_spurious: Number = None
    closed_spurious: Number = None


class RareTheorySection(StageSection):
    """``rare-theory``: the Monte-Carlo check's errors, the exact solution at the preset's γ and
    the authors' closed forms against it."""

    monte_carlo_max_abs_error: Number = None
    monte_carlo: dict[str, dict[str, Number]] = Field(default_factory=dict)
    exact_at_gamma: dict[str, Number] = Field(default_factory=dict)
    authors_vs_exact: dict[str, AuthorsVersusExact] = Field(default_factory=dict)
