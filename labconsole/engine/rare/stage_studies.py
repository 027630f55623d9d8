"""Rare-lab stages of the studies around the score: data deletion (App. C), membership
inference (§4) and the toy-model theory (§5, App. A). Tables go to ``artifacts/rare_*.json``."""

from __future__ import annotations

import time

import torch

from labconsole.engine.context import StageContext
from labconsole.engine.data.patterns import choose_spurious_indices, make_pattern
from labconsole.engine.rare.common import (
    Tracker,
    rare_data,
    seeds_from,
    small_model_stage,
    spurious_training_set,
    train_model,
    write_artifact,
)
from labconsole.engine.rare.deletion import incremental_retrain, without_rows
from labconsole.engine.rare.spurious_score import mean_se, spurious_measures
from labconsole.engine.rare.stage_common import (
    MEMBERSHIP_MEASURES,
    _aggregate,
    _mean_of,
    _prepare,
    model_parameters,
    recipe_fields,
)
from labconsole.engine.rare.training import Recipe
from labconsole.engine.records.base import MeanSE
from labconsole.engine.records.rare import (
    AuthorsCase,
    AuthorsVersusExact,
    DeletionRun,
    MeasureStats,
    MembershipRun,
    RareDeletionArtifact,
    RareDeletionSection,
    RareMembershipArtifact,
    RareMembershipSection,
    RareTheoryArtifact,
    RareTheorySection,
)


@small_model_stage
def run_deletion_stage(ctx: StageContext) -> RareDeletionSection:
    rare, data, target, recipe = _prepare(ctx, ctx.preset.rare.deletion_n, "rare.deletion_n")
    seeds = seeds_from(ctx.preset.seed, rare.deletion_seeds)
    ns = sorted(set(rare.deletion_n))  # every count ≥ 1 (validated with the preset)
    tracker = Tracker(ctx, len(seeds) * 3 * len(ns), max(recipe.epochs, rare.deletion_epochs))
    rows: list[DeletionRun] = []
    for seed in seeds:
        pattern = make_pattern(rare.deletion_pattern, data.shape, seed)
        for n in ns:
            x, y, chosen = spurious_training_set(data, target, n, pattern, seed)
            model = train_model(ctx, data, tracker, seed=seed, recipe=recipe, x=x, y=y, label=f"n={n} seed={seed}")
            before = spurious_measures(model, data.x_test, data.y_test, pattern, target, rare.epsilon)
            incremental_retrain(
                model,
                x,
                y,
                chosen,
                recipe,
                epochs=rare.deletion_epochs,
                lr=rare.deletion_lr,
                seed=seed,
                on_epoch=tracker.hook(f"deleting n={n} seed={seed}"),
            )
            tracker.finish_model()
            after = spurious_measures(model, data.x_test, data.y_test, pattern, target, rare.epsilon)
            # What deletion approximates: a model trained from scratch on the training set minus
            # the deleted rows (the same recipe and seed as the model before deletion).
            keep = without_rows(len(y), chosen, y.device)
            scratch = train_model(
                ctx, data, tracker, seed=seed, recipe=recipe, x=x[keep], y=y[keep], label=f"without n={n} seed={seed}"
            )
            reference = spurious_measures(scratch, data.x_test, data.y_test, pattern, target, rare.epsilon)
            rows.append(DeletionRun(n=n, seed=seed, before=before, after=after, retrained_from_scratch=reference))
    table: dict[str, dict[str, MeasureStats]] = {}
    for n in ns:
        at_n = [r for r in rows if r.n == n]
        table[str(n)] = {
            "before": _aggregate([r.before for r in at_n]),
            "after": _aggregate([r.after for r in at_n]),
            "retrained_from_scratch": _aggregate([r.retrained_from_scratch for r in at_n]),
        }
    artifact = RareDeletionArtifact(
        pattern=rare.deletion_pattern,
        method="incremental retraining: a fresh optimizer at constant deletion_lr for deletion_epochs epochs "
        "on the training set minus the deleted rows",
        reference="retrained_from_scratch = the training recipe from scratch on the training set minus the "
        "deleted rows",
        deletion_lr=rare.deletion_lr,
        deletion_epochs=rare.deletion_epochs,
        recipe=recipe_fields(recipe),
        model_parameters=model_parameters(ctx, data),
        training_lr=recipe.lr,
        training_epochs=recipe.epochs,
        seeds=seeds,
        n_values=ns,
        per_n=table,
        runs=rows,
    )
    write_artifact(ctx, "rare_deletion.json", artifact, "spurious scores before/after incremental retraining")
    return RareDeletionSection(
        pattern=rare.deletion_pattern,
        deletion_lr=rare.deletion_lr,
        deletion_epochs=rare.deletion_epochs,
        score={n: {k: _mean_of(v.score) for k, v in cell.items()} for n, cell in table.items()},
    )


@small_model_stage
def run_membership_stage(ctx: StageContext) -> RareMembershipSection:
    from labconsole.engine.rare.membership import attack_features, evaluate_attack, fit_attack, four_way_split
    from labconsole.engine.rare.training import predict_proba

    rare = ctx.preset.rare
    data = rare_data(ctx)
    target, recipe = rare.target_class, Recipe.from_config(rare, ctx.preset.data.augment)
    # Pool every labelled image (train, val if any, test), then cut four disjoint quarters per seed.
    x_all = torch.cat([data.x_train, *data.x_extra, data.x_test])
    y_all = torch.cat([data.y_train, *data.y_extra, data.y_test])
    seeds = seeds_from(ctx.preset.seed, rare.membership_seeds)
    ns = sorted(set(rare.membership_n))
    quarters = {seed: four_way_split(y_all, seed) for seed in seeds}
    for seed, parts in quarters.items():
        try:
            choose_spurious_indices(y_all[parts["target_train"]].cpu(), target, max(ns), seed)
        except Exception as exc:
            raise type(exc)(
                f"rare.membership_n (target-train quarter, {len(parts['target_train'])} images): {exc}"
            ) from None
    tracker = Tracker(ctx, len(seeds) * (1 + len(ns)), recipe.epochs)
    rows: list[MembershipRun] = []
    for seed in seeds:
        parts = {k: v.to(ctx.device) for k, v in quarters[seed].items()}
        # Shadow model: clean shadow-train; its members/non-members teach the attack.
        shadow = train_model(
            ctx,
            data,
            tracker,
            seed=seed + 50_000,
            recipe=recipe,
            x=x_all[parts["shadow_train"]],
            y=y_all[parts["shadow_train"]],
            label=f"shadow seed={seed}",
        )
        shadow_in = attack_features(predict_proba(shadow, x_all[parts["shadow_train"]]), y_all[parts["shadow_train"]])
        shadow_out = attack_features(predict_proba(shadow, x_all[parts["shadow_test"]]), y_all[parts["shadow_test"]])
        attack = fit_attack(shadow_in, shadow_out, seed)
        pattern = make_pattern(rare.membership_pattern, data.shape, seed)
        x_tt, y_tt = x_all[parts["target_train"]], y_all[parts["target_train"]]
        x_out, y_out = x_all[parts["target_test"]], y_all[parts["target_test"]]
        x_out_t, y_out_t = x_out[y_out == target], y_out[y_out == target]
        for n in ns:
            x_in, y_in, chosen = spurious_training_set(data, target, n, pattern, seed, x=x_tt, y=y_tt)
            model = train_model(
                ctx, data, tracker, seed=seed, recipe=recipe, x=x_in, y=y_in, label=f"target n={n} seed={seed}"
            )
            # Members: the training images as trained on (spurious ones with their pattern).
            # Non-members: the held-out target-test quarter, never training outputs.
            target_in = attack_features(predict_proba(model, x_in), y_in)
            target_out = attack_features(predict_proba(model, x_out), y_out)
            # Counterpart of the spurious members: held-out target-class images with the pattern.
            patterned = attack_features(predict_proba(model, pattern.apply(x_out_t)), y_out_t) if n > 0 else None
            result = evaluate_attack(
                attack, target_in, target_out, chosen.cpu().numpy(), shadow_in, shadow_out, patterned
            )
            rows.append(MembershipRun.model_validate({"n": n, "seed": seed, **result.to_dict()}))
    table: dict[str, dict[str, MeanSE]] = {}
    for n in ns:
        cell = [r for r in rows if r.n == n]
        table[str(n)] = {
            key: mean_se([v for r in cell if (v := r.measure(key)) is not None]) for key in MEMBERSHIP_MEASURES
        }
    sizes = {k: len(v) for k, v in quarters[seeds[0]].items()}
    artifact = RareMembershipArtifact(
        pattern=rare.membership_pattern,
        seeds=seeds,
        recipe=recipe_fields(recipe),
        model_parameters=model_parameters(ctx, data),
        split_sizes=sizes,
        features="sorted softmax output + prediction-correct bit, standardised",
        attack="logistic regression, C in {0.01, 0.1, 1, 10} by 3-fold CV on the shadow model",
        patterned_non_members=f"{int((y_all[quarters[seeds[0]]['target_test']] == target).sum())} held-out "
        f"target-test images of class {target} with the pattern added",
        per_n=table,
        runs=rows,
    )
    write_artifact(ctx, "rare_membership.json", artifact, "membership-inference attack accuracy per n")
    by_n = {key: {n: cell[key] for n, cell in table.items()} for key in MEMBERSHIP_MEASURES}
    return RareMembershipSection(
        pattern=rare.membership_pattern,
        split_sizes=sizes,
        accuracy=by_n["accuracy"],
        spurious_member_accuracy=by_n["spurious_member_accuracy"],
        patterned_non_member_accuracy=by_n["patterned_non_member_accuracy"],
        balanced_accuracy=by_n["balanced_accuracy"],
        auc=by_n["auc"],
    )


def run_theory_stage(ctx: StageContext) -> RareTheorySection:
    import numpy as np

    from labconsole.engine.rare.theory import (
        ToyModel,
        authors_closed_form,
        gamma_curve,
        monte_carlo_check,
        solve_population,
    )

    cfg = ctx.preset.rare.theory
    base = ToyModel(
        gamma=cfg.gamma, x_inv=cfg.x_inv, x_sp=cfg.x_sp, sigma_inv=cfg.sigma_inv, sigma_sp=cfg.sigma_sp, lam=cfg.lam
    )
    ctx.progress(epoch=1, total_epochs=1, step=0, total_steps=1, started=time.monotonic(), message="Monte-Carlo check")
    checks = {
        "spec": monte_carlo_check(
            base, samples=cfg.mc_samples, repeats=cfg.mc_repeats, extra_dims=cfg.extra_dims, seed=ctx.preset.seed
        ),
        "authors_convention_with_intercept": monte_carlo_check(
            base.with_(convention="authors", gamma=2 * base.spurious_mass, intercept=True),
            samples=cfg.mc_samples,
            repeats=cfg.mc_repeats,
            extra_dims=cfg.extra_dims,
            seed=ctx.preset.seed + 1,
        ),
    }
    ctx.check_cancel()
    gammas = np.linspace(0.0, cfg.gamma_max, cfg.gamma_points)
    along_gamma = gamma_curve(base, gammas)
    by_noise = {str(s): gamma_curve(base.with_(noise=float(s)), gammas) for s in cfg.noise_values}
    by_lam = {str(lam): gamma_curve(base.with_(lam=float(lam)), gammas) for lam in cfg.lam_values}
    ctx.check_cancel()
    # The authors' forms against the exact solution of the model they describe (γ within class +1,
    # intercept): equal when ‖x_inv‖ = ‖x_sp‖ = 1, different otherwise (docs/rare-theory.md).
    authors_model = base.with_(convention="authors", gamma=2 * base.spurious_mass, intercept=True)
    exact_authors = solve_population(authors_model)
    closed = authors_closed_form(authors_model)
    unit = authors_model.with_(x_inv=1.0, x_sp=1.0)
    comparison = {
        "as_configured": AuthorsCase.model_validate({"exact": exact_authors.to_dict(), "closed_form": closed}),
        "unit_norms": AuthorsCase.model_validate(
            {"exact": solve_population(unit).to_dict(), "closed_form": authors_closed_form(unit)}
        ),
    }
    worst = max(
        abs(q.abs_error)
        for c in checks.values()
        for k, q in c.quantities.items()
        if k in ("clean_acc", "spurious_acc", "prediction_difference") and q.abs_error is not None
    )
    artifact = RareTheoryArtifact.model_validate(
        {
            "parameters": base.__dict__,
            "monte_carlo": checks,
            "gamma_curve": along_gamma,
            "noise_curves": by_noise,
            "lam_curves": by_lam,
            "authors_comparison": comparison,
        }
    )
    write_artifact(ctx, "rare_theory.json", artifact, "exact ridge solution, Monte-Carlo check, γ/noise/λ curves")
    return RareTheorySection.model_validate(
        {
            "monte_carlo_max_abs_error": worst,
            "monte_carlo": {k: {q: v.abs_error for q, v in c.quantities.items()} for k, c in checks.items()},
            "exact_at_gamma": solve_population(base).to_dict(),
            "authors_vs_exact": {
                k: AuthorsVersusExact(
                    exact_clean=v.exact["clean_acc"],
                    closed_clean=v.closed_form["clean_acc"],
                    exact_spurious=v.exact["spurious_acc"],
                    closed_spurious=v.closed_form["spurious_acc"],
                )
                for k, v in comparison.items()
            },
        }
    )
