"""[neurons]: Stage I — ranking critical neurons and reading out interventions (SPEC §2, §4).

One section drives the three Stage I stages:
* ``neurons`` (unstructured tracing, Paper A Fig. 2/4/5, Tables 3/11/13/14, top-x %): for every
  criterion × ranked group × k (or top-x %) × mode × σ × where, intervene on the selected neurons
  and read out per-group accuracy on ``splits`` next to a random-neuron control;
* ``tracing`` (structured tracing, Fig. 7): per eligible layer, zero its top ``tracing_k``
  neurons → a layers × groups matrix per criterion;
* ``overlap`` (Fig. 3): percentile ranks of the top ``overlap_top_percent`` % gradient neurons by
  magnitude, and the reverse.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from labconsole.config.base import Section
from labconsole.config.vocab import SIGMA_GRID, Criterion, Mode, Norm, Where, check_k, check_percent, check_sigma

__all__ = ["Criterion", "Mode", "NeuronsConfig", "Where"]


class NeuronsConfig(Section):
    # -- which layers hold neurons (SPEC §2): glob patterns on module paths ---------------------
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    include_head: bool = False

    # -- ranking ---------------------------------------------------------------------------------
    criteria: tuple[Criterion, ...] = ("gradient", "magnitude")
    groups: tuple[str, ...] = Field((), description="groups to rank on (names or indices); empty = all")
    norm: Norm = "l2"
    per_layer_normalise: bool = Field(False, description="divide scores by their layer's mean before a global ranking")
    worst_samples: int = Field(256, ge=1, description="Paper A: the 256 worst-predicted examples of the group …")
    sampled: int = Field(128, ge=1, description="… of which 128 are drawn at random for the gradient")
    sample_seed: int = 0
    # paper: the group's gradient (or activation) score as is. specific: that score relative to
    # the same neuron's score on the other groups, each normalised by its layer's mean, so
    # neurons that score high for every group (layer scale) no longer top every ranking.
    score: Literal["paper", "specific"] = "paper"
    # BatchNorm while taking gradients: eval (running statistics, the mode every readout is
    # measured in) or train (batch statistics of the 128 sampled examples; running ones untouched).
    gradient_bn: Literal["eval", "train"] = "eval"

    # -- unstructured tracing (stage `neurons`) --------------------------------------------------
    top_k: tuple[int, ...] = (1, 2, 3)
    top_percent: tuple[float, ...] = Field((), description="top-x % readouts, e.g. [0.01, 0.1, 1, 10]")
    random_k: tuple[int, ...] = Field((), description="extra rows: k random eligible neurons")
    modes: tuple[Mode, ...] = ("zero",)
    stds: tuple[float, ...] = SIGMA_GRID
    seeds: int = Field(10, ge=1, description="seeds per random-mode readout (Paper A: 10)")
    where: tuple[Where, ...] = ("weight",)
    splits: tuple[str, ...] = ("train", "test")
    control_draws: int = Field(20, ge=0, description="control draws per readout (0 = none)")
    # layer-matched: each draw takes as many neurons from each layer as the critical set has
    # there, so the control says whether a drop belongs to the neurons or to their layer;
    # anywhere: neurons drawn from all eligible layers (the earlier, weaker control).
    control: Literal["layer-matched", "anywhere"] = "layer-matched"

    # -- structured tracing (stage `tracing`) ----------------------------------------------------
    tracing_k: int = Field(1, ge=1)
    tracing_splits: tuple[str, ...] = ("train",)

    # -- overlap (stage `overlap`) ---------------------------------------------------------------
    overlap_top_percent: float = 0.01
    overlap_bins: int = Field(20, ge=2)

    # -- speed -----------------------------------------------------------------------------------
    batch_size: int = Field(512, ge=1)
    grad_batch_size: int = Field(128, ge=1)
    fast_path: bool = Field(True, description="reuse activations entering the first modified layer")
    cut_cache_mb: int = Field(
        0,
        ge=0,
        description="memory for cached activations per split; 0 = auto (1 GiB on a CPU, a quarter of free GPU memory)",
    )

    @field_validator("stds")
    @classmethod
    def _positive_stds(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(check_sigma(v, key="σ") for v in value)

    @field_validator("top_k", "random_k")
    @classmethod
    def _positive_k(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(check_k(v, key="k") for v in value)

    @field_validator("top_percent")
    @classmethod
    def _percent(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(check_percent(v, key="top-x %") for v in value)

    @field_validator("overlap_top_percent")
    @classmethod
    def _overlap_percent(cls, value: float) -> float:
        return check_percent(value, key="overlap_top_percent")

    def smoke(self) -> NeuronsConfig:
        return self.model_copy(
            update={
                "seeds": min(self.seeds, 2),
                "control_draws": min(self.control_draws, 2),
                "worst_samples": min(self.worst_samples, 32),
                "sampled": min(self.sampled, 16),
                "stds": self.stds[:2],
                "cut_cache_mb": 256,
            }
        )
