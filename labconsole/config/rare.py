"""[rare]: Paper B — rare spurious correlations (SPEC §6).

The training recipe is Paper B's by default: Adam lr 0.01, batch 128, 70 epochs with the LR ×0.1 at
epochs 40/50/60. ``--smoke`` shrinks it; a shorter schedule is an explicit choice
(``epochs`` + ``lr_milestones``) and the report names it as a departure from the paper.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from labconsole.config.base import Section

PatternName = Literal["S1", "S2", "S3", "R1", "R2", "R3", "Inv"]
PATTERNS: tuple[PatternName, ...] = ("S1", "S2", "S3", "R1", "R2", "R3", "Inv")


class RareTheoryConfig(Section):
    """Paper B §5 toy model: invariant norm ‖x_inv‖, spurious norm ‖x_sp‖, noise *variances*
    σ_inv, σ_sp along each direction, ridge penalty λ, spurious fraction γ of all training data."""

    x_inv: float = Field(1.0, gt=0)
    x_sp: float = Field(1.0, gt=0)
    sigma_inv: float = Field(1.0, gt=0)
    sigma_sp: float = Field(0.01, ge=0)
    lam: float = Field(0.01, ge=0)
    gamma: float = Field(0.005, ge=0, le=0.5, description="γ for the Monte-Carlo check and the noise/λ curves")
    gamma_max: float = Field(0.1, gt=0, le=0.5)
    gamma_points: int = Field(201, ge=3)
    noise_values: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)
    lam_values: tuple[float, ...] = (0.0, 0.001, 0.01, 0.1, 1.0, 10.0)
    mc_samples: int = Field(200_000, ge=1000)
    mc_repeats: int = Field(5, ge=2)
    extra_dims: int = Field(3, ge=0, description="noise-only dimensions added to each subspace in the MC fit")

    def smoke(self) -> RareTheoryConfig:
        return self.model_copy(update={"gamma_points": 21, "mc_samples": 20_000, "mc_repeats": 2})


class RareConfig(Section):
    target_class: int = Field(0, ge=0)
    patterns: tuple[PatternName, ...] = PATTERNS
    n_spurious: tuple[int, ...] = (0, 1, 3, 5, 10, 20, 100)
    num_seeds: int = Field(5, ge=1, description="seeds preset.seed … preset.seed + num_seeds − 1")
    epsilon: float = Field(0.1, gt=0, lt=1, description="spurious score threshold on p_t(x+pattern) − p_t(x)")

    # -- training recipe (Paper B: adam, lr 0.01, 70 epochs, batch 128, ×0.1 at 40/50/60) --
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0)
    epochs: int = Field(70, ge=1)
    batch_size: int = Field(128, ge=1)
    lr_milestones: tuple[int, ...] = (40, 50, 60)
    lr_gamma: float = Field(0.1, gt=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    input_noise_std: float = Field(0.0, ge=0, description="Gaussian noise added to training inputs")
    clip_value: float = Field(0.0, ge=0, description="clip each gradient entry to ±value (0 = off)")
    clip_norm: float = Field(0.0, ge=0, description="clip the global gradient norm (0 = off)")

    # -- rare-weights / rare-sensitivity --
    weights_pattern: PatternName = "S3"
    weights_n: tuple[int, ...] = (0, 1, 10, 100)
    weights_importance: Literal["signed", "abs"] = Field(
        "signed", description="pixel importance: max first-layer weight (Paper B) or max |weight|"
    )
    sensitivity_backbones: tuple[str, ...] = ("mlp", "mlp_small", "small_cnn")
    sensitivity_fractions: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

    # -- rare-membership: four disjoint quarters of train+test pooled --
    membership_pattern: PatternName = "R3"
    membership_n: tuple[int, ...] = (0, 1, 3, 10, 40)
    membership_seeds: int = Field(10, ge=1, description="Paper B repeats the attack ten times")

    # -- rare-mitigations: one model per (method, strength, seed) --
    mitigation_pattern: PatternName = "S3"
    mitigation_n: int = Field(10, ge=0)
    mitigation_seeds: int = Field(2, ge=1)
    weight_decays: tuple[float, ...] = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
    noise_stds: tuple[float, ...] = (0.0, 0.05, 0.1, 0.5, 1.0, 5.0)
    clip_values: tuple[float, ...] = (0.0, 1.0, 0.1, 0.01, 0.001)
    clip_norms: tuple[float, ...] = (0.0, 10.0, 1.0, 0.1, 0.01)

    # -- rare-deletion: incremental retraining without the spurious examples --
    deletion_pattern: PatternName = "R3"
    deletion_n: tuple[int, ...] = (1, 3, 10, 100)
    deletion_seeds: int = Field(3, ge=1)
    deletion_epochs: int = Field(70, ge=1, description="Paper B retrains as long as it trained")
    deletion_lr: float = Field(0.001, gt=0, description="learning rate of the incremental retraining")

    theory: RareTheoryConfig = RareTheoryConfig()

    @field_validator("n_spurious", "weights_n", "membership_n", "deletion_n")
    @classmethod
    def _counts_non_negative(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("needs at least one value")
        if any(v < 0 for v in value):
            raise ValueError("numbers of spurious examples must be ≥ 0")
        return value

    @field_validator("deletion_n")
    @classmethod
    def _deletion_counts_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(v < 1 for v in value):
            raise ValueError("each deletion count must be ≥ 1: a model with n = 0 has nothing to delete")
        return value

    @field_validator("patterns")
    @classmethod
    def _some_pattern(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"needs at least one pattern of {', '.join(PATTERNS)}")
        return value

    @field_validator("sensitivity_fractions")
    @classmethod
    def _fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 <= v <= 1.0 for v in value):
            raise ValueError("fractions must lie in [0, 1]")
        return value

    @model_validator(mode="after")
    def _milestones_sorted(self) -> RareConfig:
        if list(self.lr_milestones) != sorted(self.lr_milestones) or any(m < 1 for m in self.lr_milestones):
            raise ValueError("lr_milestones must be increasing epoch numbers ≥ 1")
        return self

    def smoke(self) -> RareConfig:
        # Fewer models, never other counts: keep the smallest and the largest count as given, so a
        # count the data cannot supply fails under --smoke exactly as it fails without it.
        def few(values: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(sorted({min(values), max(values)}))

        return self.model_copy(
            update={
                "patterns": self.patterns[:2],
                "n_spurious": few(self.n_spurious),
                "num_seeds": min(self.num_seeds, 2),
                "epochs": min(self.epochs, 3),
                "lr_milestones": tuple(m for m in self.lr_milestones if m < 3),
                "weights_n": few(self.weights_n),
                "sensitivity_backbones": self.sensitivity_backbones[:1],
                "sensitivity_fractions": self.sensitivity_fractions[:3],
                "membership_n": few(self.membership_n),
                "membership_seeds": 1,
                "mitigation_seeds": 1,
                "weight_decays": self.weight_decays[:2],
                "noise_stds": self.noise_stds[:2],
                "clip_values": self.clip_values[:2],
                "clip_norms": self.clip_norms[:2],
                "deletion_n": (max(self.deletion_n),),
                "deletion_seeds": 1,
                "deletion_epochs": min(self.deletion_epochs, 2),
                "theory": self.theory.smoke(),
            }
        )
