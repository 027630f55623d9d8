"""Pipeline stages of the rare-correlation lab (Paper B). Each takes a StageContext and returns
its ``summary.json`` section (a record of ``labconsole.engine.records``); tables go to
``artifacts/rare_*.json`` (the report draws the figures from them).

All models of a stage are small and trained on whole-split tensors on ``ctx.device``.
"""

from __future__ import annotations

import torch

from labconsole.engine.context import StageContext
from labconsole.engine.data.patterns import make_pattern
from labconsole.engine.rare.common import (
    Tracker,
    rare_data,
    seeds_from,
    small_model_stage,
    spurious_training_set,
    train_model,
    write_artifact,
)
from labconsole.engine.rare.mitigations import mitigated_recipe, mitigation_grid
from labconsole.engine.rare.spurious_score import mean_se, spurious_measures, welch_greater
from labconsole.engine.rare.stage_common import (
    IMPORTANCE_DEFINITIONS,
    _aggregate,
    _check_counts,
    _mean_of,
    _prepare,
    empirical_norm,
    model_parameters,
    norm_score_correlation,
    recipe_fields,
)
from labconsole.engine.rare.stage_studies import run_deletion_stage, run_membership_stage, run_theory_stage
from labconsole.engine.rare.training import Recipe
from labconsole.engine.rare.visualise import pixel_importance, zero_fraction_of_pixels
from labconsole.engine.records.base import MeanSE
from labconsole.engine.records.rare import (
    MitigationCell,
    MitigationMeans,
    RareMitigationsArtifact,
    RareMitigationsSection,
    RareScoreArtifact,
    RareScoreArtifactCell,
    RareScoreRun,
    RareSensitivityArtifact,
    RareSensitivitySection,
    RareWeightsArtifact,
    RareWeightsRow,
    RareWeightsSection,
)
from labconsole.engine.records.sections import RareScoreCell, RareScoreSection

__all__ = [
    "run_deletion_stage",
    "run_membership_stage",
    "run_mitigations_stage",
    "run_score_stage",
    "run_sensitivity_stage",
    "run_theory_stage",
    "run_weights_stage",
]


@small_model_stage
def run_score_stage(ctx: StageContext) -> RareScoreSection:
    ns = sorted(set(ctx.preset.rare.n_spurious) | {0})  # n = 0 is the baseline of the Welch test
    rare, data, target, recipe = _prepare(ctx, ns, "rare.n_spurious")
    seeds = seeds_from(ctx.preset.seed, rare.num_seeds)
    positive = [n for n in ns if n > 0]
    tracker = Tracker(ctx, len(seeds) * (1 + len(rare.patterns) * len(positive)), recipe.epochs)
    rows: list[tuple[str, int, dict[str, float]]] = []  # (pattern, n, spurious_measures) per model
    runs: list[RareScoreRun] = []
    for seed in seeds:
        # The n = 0 model does not depend on the pattern: train it once per seed.
        baseline = train_model(ctx, data, tracker, seed=seed, recipe=recipe, label=f"n=0 seed={seed}")
        for name in rare.patterns:
            pattern = make_pattern(name, data.shape, seed)
            measures = spurious_measures(baseline, data.x_test, data.y_test, pattern, target, rare.epsilon)
            rows.append((name, 0, measures))
            runs.append(RareScoreRun.model_validate({"pattern": name, "n": 0, "seed": seed, **measures}))
        for name in rare.patterns:
            pattern = make_pattern(name, data.shape, seed)
            for n in positive:
                x, y, _ = spurious_training_set(data, target, n, pattern, seed)
                model = train_model(
                    ctx, data, tracker, seed=seed, recipe=recipe, x=x, y=y, label=f"{name} n={n} seed={seed}"
                )
                measures = spurious_measures(model, data.x_test, data.y_test, pattern, target, rare.epsilon)
                rows.append((name, n, measures))
                runs.append(RareScoreRun.model_validate({"pattern": name, "n": n, "seed": seed, **measures}))
    norms: dict[str, MeanSE] = {
        name: mean_se([empirical_norm(make_pattern(name, data.shape, seed), data.x_test) for seed in seeds])
        for name in rare.patterns
    }
    table: dict[str, dict[str, RareScoreArtifactCell]] = {}
    for name in rare.patterns:
        base_scores = [m["score"] for p, k, m in rows if p == name and k == 0]
        table[name] = {}
        for n in ns:
            cell = [m for p, k, m in rows if p == name and k == n]
            stats = _aggregate(cell)
            table[name][str(n)] = RareScoreArtifactCell(
                score=stats.score,
                clean_acc=stats.clean_acc,
                spurious_acc=stats.spurious_acc,
                p_value=None if n == 0 else welch_greater([m["score"] for m in cell], base_scores),
            )
    artifact = RareScoreArtifact(
        dataset=data.dataset,
        target_class=target,
        epsilon=rare.epsilon,
        seeds=seeds,
        n_values=ns,
        recipe=recipe_fields(recipe),
        model_parameters=model_parameters(ctx, data),
        per_pattern=table,
        pattern_norm=norms,
        norm_score_correlation=norm_score_correlation(norms, table, positive),
        runs=runs,
    )
    write_artifact(ctx, "rare_score.json", artifact, "spurious score, clean and spurious accuracy per pattern and n")
    return RareScoreSection(
        per_pattern={
            name: {n: RareScoreCell.model_validate(cell.to_json()) for n, cell in cells.items()}
            for name, cells in table.items()
        },
        seeds=len(seeds),
        models_trained=tracker.done,
    )


@small_model_stage
def run_weights_stage(ctx: StageContext) -> RareWeightsSection:
    rare = ctx.preset.rare
    data = rare_data(ctx)
    target, recipe, seed = rare.target_class, Recipe.from_config(rare, ctx.preset.data.augment), ctx.preset.seed
    _check_counts(data, target, rare.weights_n, "rare.weights_n")
    pattern = make_pattern(rare.weights_pattern, data.shape, seed)
    region = pattern.region
    tracker = Tracker(ctx, len(rare.weights_n), recipe.epochs)
    rows: list[RareWeightsRow] = []
    for n in rare.weights_n:
        x, y, _ = spurious_training_set(data, target, n, pattern, seed)
        model = train_model(
            ctx, data, tracker, seed=seed, recipe=recipe, x=x, y=y, label=f"{rare.weights_pattern} n={n}"
        )
        importance = pixel_importance(model, data.shape, rare.weights_importance)
        if importance is None:
            ctx.log(
                f"pixel importance needs an MLP whose first layer is Linear; backbone "
                f"{ctx.preset.model.backbone!r} has none, so rare-weights is skipped",
                level="warning",
            )
            return RareWeightsSection(skipped=f"backbone {ctx.preset.model.backbone} has no input Linear layer")
        rows.append(
            RareWeightsRow(
                n=n,
                pattern_region_mean=float(importance[region].mean()),
                elsewhere_mean=float(importance[~region].mean()) if bool((~region).any()) else None,
                map=importance.tolist(),
            )
        )
    write_artifact(
        ctx,
        "rare_weights.json",
        RareWeightsArtifact(
            pattern=rare.weights_pattern,
            seed=seed,
            recipe=recipe_fields(recipe),
            model_parameters=model_parameters(ctx, data),
            importance=rare.weights_importance,
            definition=IMPORTANCE_DEFINITIONS[rare.weights_importance],
            rows=rows,
        ),
        f"MLP pixel importance ({IMPORTANCE_DEFINITIONS[rare.weights_importance]}) per n",
    )
    return RareWeightsSection(
        pattern=rare.weights_pattern,
        pattern_region_mean={str(r.n): r.pattern_region_mean for r in rows},
        elsewhere_mean={str(r.n): r.elsewhere_mean for r in rows},
    )


@small_model_stage
def run_sensitivity_stage(ctx: StageContext) -> RareSensitivitySection:
    from labconsole.engine.rare.training import predict_proba

    rare = ctx.preset.rare
    data = rare_data(ctx)
    recipe, seed = Recipe.from_config(rare, ctx.preset.data.augment), ctx.preset.seed
    tracker = Tracker(ctx, len(rare.sensitivity_backbones), recipe.epochs)
    curves_out: dict[str, list[float]] = {}
    for backbone in rare.sensitivity_backbones:
        model = train_model(ctx, data, tracker, seed=seed, recipe=recipe, label=f"clean {backbone}", backbone=backbone)
        probs = []
        for fraction in rare.sensitivity_fractions:
            generator = torch.Generator().manual_seed(seed * 13 + 1)
            x = zero_fraction_of_pixels(data.x_train, float(fraction), generator)
            p = predict_proba(model, x)
            probs.append(float(p.gather(1, data.y_train.unsqueeze(1)).mean()))
        curves_out[backbone] = probs
    fractions = list(rare.sensitivity_fractions)
    write_artifact(
        ctx,
        "rare_sensitivity.json",
        RareSensitivityArtifact(
            fractions=fractions,
            true_class_probability=curves_out,
            split="train",
            recipe=recipe_fields(recipe),
            model_parameters={b: model_parameters(ctx, data, b)[b] for b in rare.sensitivity_backbones},
        ),
        "mean true-class probability when a fraction of non-zero pixels is zeroed",
    )
    return RareSensitivitySection(fractions=fractions, true_class_probability=curves_out)


@small_model_stage
def run_mitigations_stage(ctx: StageContext) -> RareMitigationsSection:
    rare, data, target, base = _prepare(ctx, [ctx.preset.rare.mitigation_n], "rare.mitigation_n")
    seeds = seeds_from(ctx.preset.seed, rare.mitigation_seeds)
    grid = mitigation_grid(rare)
    unique = {
        (mitigated_recipe(base, m, s), seed) for m, strengths in grid.items() for s in strengths for seed in seeds
    }
    tracker = Tracker(ctx, len(unique) + len(seeds), base.epochs)
    # The reference line: no spurious example and no mitigation, the same recipe otherwise.
    reference_cells = []
    for seed in seeds:
        pattern = make_pattern(rare.mitigation_pattern, data.shape, seed)
        clean = train_model(ctx, data, tracker, seed=seed, recipe=base, label=f"n=0 reference seed={seed}")
        reference_cells.append(spurious_measures(clean, data.x_test, data.y_test, pattern, target, rare.epsilon))
    done: dict[tuple[Recipe, int], dict[str, float]] = {}  # strength 0 of every method is one model
    table: dict[str, list[MitigationCell]] = {}
    for method, strengths in grid.items():
        table[method] = []
        for strength in strengths:
            recipe = mitigated_recipe(base, method, strength)
            cells = []
            for seed in seeds:
                if (recipe, seed) not in done:
                    pattern = make_pattern(rare.mitigation_pattern, data.shape, seed)
                    x, y, _ = spurious_training_set(data, target, rare.mitigation_n, pattern, seed)
                    model = train_model(
                        ctx, data, tracker, seed=seed, recipe=recipe, x=x, y=y, label=f"{method}={strength} seed={seed}"
                    )
                    done[(recipe, seed)] = spurious_measures(
                        model, data.x_test, data.y_test, pattern, target, rare.epsilon
                    )
                cells.append(done[(recipe, seed)])
            stats = _aggregate(cells)
            table[method].append(
                MitigationCell(
                    strength=float(strength),
                    score=stats.score,
                    clean_acc=stats.clean_acc,
                    spurious_acc=stats.spurious_acc,
                )
            )
    artifact = RareMitigationsArtifact(
        pattern=rare.mitigation_pattern,
        n=rare.mitigation_n,
        seeds=seeds,
        recipe=recipe_fields(base),
        model_parameters=model_parameters(ctx, data),
        reference_n0=_aggregate(reference_cells),
        methods=table,
    )
    write_artifact(ctx, "rare_mitigations.json", artifact, "spurious score and accuracies per mitigation strength")
    return RareMitigationsSection(
        pattern=rare.mitigation_pattern,
        n=rare.mitigation_n,
        methods={
            m: [
                MitigationMeans(
                    strength=c.strength,
                    score=_mean_of(c.score),
                    clean_acc=_mean_of(c.clean_acc),
                    spurious_acc=_mean_of(c.spurious_acc),
                )
                for c in cells
            ]
            for m, cells in table.items()
        },
    )
