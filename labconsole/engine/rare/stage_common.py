"""What the rare-lab stages share: the measures they aggregate, the preset checks they start
with, and the facts they record beside their tables (pattern norms, parameter counts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from labconsole.config.rare import RareConfig
from labconsole.engine.context import StageContext
from labconsole.engine.data.patterns import Pattern, choose_spurious_indices
from labconsole.engine.rare.common import RareData, rare_data
from labconsole.engine.rare.spurious_score import check_epsilon, mean_se
from labconsole.engine.rare.training import Recipe
from labconsole.engine.records.base import MeanSE
from labconsole.engine.records.rare import MeasureStats, NormCorrelation, RareScoreArtifactCell, RecipeFields

MEASURES = ("score", "clean_acc", "spurious_acc")


MEMBERSHIP_MEASURES = (
    "accuracy",
    "member_accuracy",
    "non_member_accuracy",
    "balanced_accuracy",
    "auc",
    "spurious_member_accuracy",
    "patterned_non_member_accuracy",
)


IMPORTANCE_DEFINITIONS = {
    "signed": "max over hidden units of the first-layer weight from the pixel (Paper B)",
    "abs": "max over hidden units of |first-layer weight| from the pixel",
}


def empirical_norm(pattern: Pattern, x: torch.Tensor) -> float:
    """Paper B App. B.2: mean over images of ‖x − (x + pattern)‖₂ (the pattern as actually applied)."""
    diff = (pattern.apply(x) - x).flatten(1)
    return float(diff.norm(dim=1).mean())


def norm_score_correlation(
    norms: Mapping[str, MeanSE], table: Mapping[str, Mapping[str, RareScoreArtifactCell]], positive: list[int]
) -> NormCorrelation:
    """Pearson r (and its p-value) between each pattern's empirical norm and its spurious score
    averaged over the n > 0 counts (Paper B App. B.2); ``None`` with fewer than three patterns."""
    names = list(norms) if positive else []
    undefined = NormCorrelation(r=None, p_value=None, patterns=names)
    if len(names) < 3:
        return undefined
    from scipy import stats

    xs = [norms[name].mean for name in names]
    scores = [[_mean_of(table[name][str(n)].score) for n in positive] for name in names]
    xs_known = [x for x in xs if x is not None]
    if len(xs_known) < len(xs) or any(s is None for row in scores for s in row):
        return undefined  # a pattern without a measured norm or score: no correlation to report
    ys = [sum(s for s in row if s is not None) / len(row) for row in scores]
    if len(set(xs_known)) < 2 or len(set(ys)) < 2:
        return undefined
    result = stats.pearsonr(xs_known, ys)
    return NormCorrelation(r=float(result.statistic), p_value=float(result.pvalue), patterns=names)


def _mean_of(value: MeanSE | None) -> float | None:
    return None if value is None else value.mean


def recipe_fields(recipe: Recipe) -> RecipeFields:
    """The recipe as its artifact records it."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in recipe.__dict__.items()}


def model_parameters(ctx: StageContext, data: RareData, backbone: str | None = None) -> dict[str, int]:
    """{backbone: number of parameters} of the model the stage trains (Paper B Table 2)."""
    from labconsole.engine.rare.training import build_model

    name = backbone or str(ctx.preset.model.backbone)
    model = build_model(ctx.preset, data.num_classes, data.shape[0], data.shape[1], 0, torch.device("cpu"), name)
    return {name: sum(p.numel() for p in model.parameters())}


def _aggregate(rows: Sequence[Mapping[str, float]]) -> MeasureStats:
    """Each measure of ``rows`` (``spurious_measures`` of one model each) as mean ± s.e."""
    return MeasureStats(
        score=mean_se([r["score"] for r in rows]),
        clean_acc=mean_se([r["clean_acc"] for r in rows]),
        spurious_acc=mean_se([r["spurious_acc"] for r in rows]),
    )


def _check_counts(data: RareData, target: int, counts: Sequence[int], where: str) -> None:
    try:
        choose_spurious_indices(data.y_train.cpu(), target, max(counts), seed=0)
    except Exception as exc:
        raise type(exc)(f"{where}: {exc}") from None


def _prepare(ctx: StageContext, counts: Sequence[int], where: str) -> tuple[RareConfig, RareData, int, Recipe]:
    """Validate ε and the requested spurious counts, load the data: (rare, data, target, recipe)."""
    rare = ctx.preset.rare
    check_epsilon(rare.epsilon)
    data = rare_data(ctx)
    _check_counts(data, rare.target_class, counts, where)
    return rare, data, rare.target_class, Recipe.from_config(rare, ctx.preset.data.augment)
