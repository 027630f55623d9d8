"""[finetune]: Stage II — pruned-contrastive fine-tuning (SPEC §5), its authors'-code variant
(SPEC §7), and the DFR last-layer baseline ([finetune.dfr]).

Paper defaults: kick-in at ERM epoch 40, top 0.01 % neurons masked by magnitude / gradient /
both, NT-Xent(target(x1), aux(x2); τ = 0.5) + 0.2·MSE(one-hot, softmax), Adam 2e-4,
ReduceLROnPlateau(0.5, patience 1), 20 epochs, selection by best validation WGA.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from labconsole.config.base import Section
from labconsole.config.vocab import MASK_ALL, MaskCriterion, Norm, Views, check_percent


class DfrConfig(Section):
    """DFR-style baseline (Kirichenko et al. 2023): retrain only the last layer, a logistic
    regression on frozen penultimate features of a group-balanced half of the validation set;
    the other half of validation selects the regularisation strength by WGA."""

    c_values: tuple[float, ...] = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)
    balanced_draws: int = Field(10, ge=1, description="group-balanced resamples averaged into the final head")
    penalty: Literal["l1", "l2"] = "l1"
    max_iter: int = Field(1000, ge=10)
    batch_size: int = Field(256, ge=1)

    @field_validator("c_values")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(not c > 0 for c in value):
            raise ValueError("give at least one inverse regularisation strength C > 0")
        return value

    def smoke(self) -> DfrConfig:
        return self.model_copy(
            update={
                "c_values": self.c_values[:2],
                "balanced_draws": min(self.balanced_draws, 2),
                "max_iter": min(self.max_iter, 200),
            }
        )


class GradcamConfig(Section):
    """GradCAM maps (Paper A Figure 10): ERM vs fine-tuned, a few test images per group."""

    layer: str = Field("", description="target layer; empty = the last conv (ResNet) or last block (ViT)")
    output_index: int = Field(0, ge=0, description="which output dimension is explained (Paper A: 0)")
    per_group: int = Field(3, ge=1, le=16)
    split: str = "test"


class FinetuneConfig(Section):
    # -- where fine-tuning starts ----------------------------------------------------------------
    kick_in_epoch: int = Field(
        40, ge=0, description="ERM epoch to start from (0 = the selected ERM model or model.checkpoint as given)"
    )
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(128, ge=2, description="NT-Xent needs at least 2 images per batch")
    lr: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    plateau_patience: int = Field(1, ge=0)
    # The starting model is always evaluated and recorded as epoch 0. "best-val-wga" (paper)
    # picks the best fine-tuning epoch ≥ 1 even when every one is worse than the start;
    # "best-val-wga-or-start" lets epoch 0 win, so fine-tuning can never report a loss it chose.
    selection: Literal["best-val-wga", "best-val-wga-or-start", "last"] = "best-val-wga"
    eval_train: bool = Field(False, description="also train-split group accuracy every epoch")
    # BatchNorm while fine-tuning: "train" (paper) normalises with batch statistics and
    # re-estimates the running ones; "frozen" keeps every BatchNorm in eval mode (running
    # statistics used and left unchanged), which isolates what BN re-estimation alone does.
    batchnorm: Literal["train", "frozen"] = "train"
    # continued-erm: after fine-tuning, also train the control from the same start (the
    # supervised term alone, all else equal) and report method − control; doubles the cost.
    control: Literal["none", "continued-erm"] = "none"

    # -- the auxiliary model's mask --------------------------------------------------------------
    # critical-neurons (paper): top p % of neurons by `criterion`;
    # smallest-weights (authors' code): the p % smallest individual weights, global, unstructured.
    mask: Literal["critical-neurons", "smallest-weights"] = "critical-neurons"
    criterion: MaskCriterion = "magnitude"
    prune_percent: float = Field(
        0.01, description="p in percent: 0.01 = 0.01 % of the neurons (0 = mask nothing: plain two-view contrast)"
    )
    gradient_source: Literal["full-train", "minority-groups"] = "full-train"
    worst_samples: int = Field(256, ge=1, description="highest-CE training examples considered …")
    sampled: int = Field(128, ge=1, description="… of which this many, drawn at random, give the gradient")
    gradient_pool: int = Field(
        0,
        ge=0,
        description="score at most this many random training examples for "
        "the worst-CE search (0 = all; CelebA is large)",
    )
    norm: Norm = "l2"
    per_layer_normalise: bool = False
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()

    # -- the loss --------------------------------------------------------------------------------
    temperature: float = Field(0.5, description="NT-Xent temperature τ (> 0)")
    supervised: Literal["mse", "ce"] = "mse"
    supervised_weight: float = Field(0.2, description="λ (≥ 0) in w·NT-Xent + λ·supervised")
    contrastive_weight: float = Field(
        1.0,
        description="w (≥ 0) in w·NT-Xent + λ·supervised; 0 = the supervised term alone "
        "(continued ERM with the same views, optimiser and BN mode: the control for Stage II)",
    )
    contrast_on: Literal["logits", "probabilities", "features"] = "logits"
    projection_dim: int = Field(2, ge=1, description="output size of the projection head (contrast_on = features)")
    contrastive: Literal["two-views", "double-same-view"] = "two-views"
    head_softmax: bool = Field(
        False,
        description="authors' code: Softmax inside the model; the supervised "
        "CE and the contrast then act on probabilities",
    )
    # In-memory data are the embedded digit datasets: a mirrored digit is another digit (and
    # fine-tuning on flipped views alone, without any contrast, wrecks the ERM model there), so
    # the default is ERM's own random translation. File data (Waterbirds, CelebA) always get
    # Paper A's Table 1 views through finetune_view_transform.
    views: Views = Field(
        "translate", description="augmentation of the two views on in-memory data (file data: Table 1 always)"
    )

    dfr: DfrConfig = DfrConfig()
    gradcam: GradcamConfig = GradcamConfig()

    @field_validator("prune_percent")
    @classmethod
    def _percent(cls, value: float) -> float:
        return check_percent(
            value, key="prune_percent", zero_means="no mask (plain two-view contrast)", all_refused=MASK_ALL
        )

    @field_validator("temperature")
    @classmethod
    def _temperature(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("the NT-Xent temperature τ must be > 0")
        return value

    @field_validator("supervised_weight")
    @classmethod
    def _lambda(cls, value: float) -> float:
        if not value >= 0:
            raise ValueError("λ (supervised_weight) must be ≥ 0")
        return value

    @field_validator("contrastive_weight")
    @classmethod
    def _contrastive_weight(cls, value: float) -> float:
        if not value >= 0:
            raise ValueError("contrastive_weight must be ≥ 0 (0 = supervised term only)")
        return value

    def smoke(self) -> FinetuneConfig:
        # The smoke ERM keeps no kick-in checkpoint: start from its selected model instead.
        return self.model_copy(
            update={
                "kick_in_epoch": 0,
                "epochs": min(self.epochs, 2),
                "batch_size": min(self.batch_size, 32),
                "worst_samples": min(self.worst_samples, 32),
                "sampled": min(self.sampled, 16),
                "gradient_pool": 0,
                "dfr": self.dfr.smoke(),
                "gradcam": self.gradcam.model_copy(update={"per_group": 1}),
            }
        )

    def variant_options(self) -> dict[str, str]:
        """Each point of SPEC §7 this section decides, and which side it takes."""
        return {
            "mask": "paper (critical neurons)"
            if self.mask == "critical-neurons"
            else "authors' code (smallest weights, unstructured)",
            "supervised": "paper (MSE)" if self.supervised == "mse" else "CE",
            "contrastive": "paper (two views)"
            if self.contrastive == "two-views"
            else "authors' code (double NT-Xent, same view)",
            "kick_in": f"ERM epoch {self.kick_in_epoch}" if self.kick_in_epoch else "from the loaded checkpoint",
            "head": "paper (logits)" if not self.head_softmax else "authors' code (softmax in the model)",
            "selection": {
                "best-val-wga": "paper (best val WGA)",
                "best-val-wga-or-start": "best val WGA, the starting model (epoch 0) included",
                "last": "last epoch",
            }[self.selection],
            "contrastive_weight": "paper (1)"
            if self.contrastive_weight == 1
            else f"{self.contrastive_weight:g}" + (" (supervised term only)" if self.contrastive_weight == 0 else ""),
            "batchnorm": "paper (train mode)" if self.batchnorm == "train" else "frozen (eval mode)",
        }
