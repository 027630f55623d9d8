"""Rare-lab report sections of the studies: mitigations (Fig. 8, 12, 13), data deletion
(App. C, Fig. 18) and the toy-model theory (§5, App. A, Fig. 10-11)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from labconsole.engine.records import (
    MeanSE,
    MeasureStats,
    RareDeletionArtifact,
    RareMitigationsArtifact,
    RareTheoryArtifact,
    TheoryCurve,
)
from labconsole.report import figures_rare
from labconsole.report.doc import MISSING, Figure, Section, Table, Text
from labconsole.report.figures_rare import DELETION_STAGES
from labconsole.report.rare_format import MEASURES, _drawn, _is_num, fmt, mse, read_artifact


def mitigations_section(path: Path) -> Section | None:
    data = read_artifact(path, "rare_mitigations.json", RareMitigationsArtifact)
    if data is None:
        return None
    section = Section(
        "Mitigations: spurious score and accuracies per strength (Paper B Fig. 8, 12, 13)", anchor="rare-mitigations"
    )
    reference = data.reference_n0
    rows: list[list[str]] = []
    breaks: list[int] = []
    for figure in _drawn_all(lambda: figures_rare.mitigation_figures(data), "the mitigation figures"):
        section.add(figure)
    from labconsole.engine.rare.mitigations import MITIGATIONS

    for method, cells in data.methods.items():
        breaks.append(len(rows))
        label = MITIGATIONS[method][2] if method in MITIGATIONS else method
        for c in cells:
            rows.append([label, f"{c.strength:g}"] + [mse(c.measure(k)) for k, _ in MEASURES])
    if reference is not None and reference.to_json():
        breaks.append(len(rows))
        rows.append(["n = 0 reference", MISSING] + [mse(reference.measure(k)) for k, _ in MEASURES])
    section.add(
        Table(
            ["method", "strength", "spurious score", "clean acc", "spurious acc"],
            rows,
            title=f"pattern {data.pattern}, n = {data.n}",
            caption="mean ± s.e. over seeds; strength 0 = the method off",
            section_breaks=tuple(breaks[1:]),
        )
    )
    return section


def _drawn_all(build: Callable[[], list[Figure]], name: str) -> list[Figure | Text]:
    """Several figures of one study; a record they cannot be drawn from becomes one note."""
    try:
        return list(build())
    except Exception as exc:  # a figure must never take its table down with it
        return [Text(f"could not draw {name}: {type(exc).__name__}: {exc}", kind="warning")]


def deletion_section(path: Path) -> Section | None:
    data = read_artifact(path, "rare_deletion.json", RareDeletionArtifact)
    if data is None:
        return None
    table = data.per_n
    ns = sorted(int(n) for n in table)
    section = Section("Data deletion by incremental retraining (Paper B App. C, Fig. 18)", anchor="rare-deletion")
    lr_text = (
        f"incremental retraining at constant lr {data.deletion_lr} for {data.deletion_epochs} epochs "
        f"(training: lr {data.training_lr}, {data.training_epochs} epochs)"
    )
    section.add(_drawn(lambda: figures_rare.deletion_figure(data), "the deletion figure"))
    rows = [[str(n)] + [mse(_measure(table[str(n)].get(stage), "score")) for stage, _ in DELETION_STAGES] for n in ns]
    reference = data.reference or "retrained_from_scratch: the n = 0 model (runs before this definition)"
    section.add(
        Table(
            ["n"] + [f"score {label}" for _, label in DELETION_STAGES],
            rows,
            title="spurious score before/after deletion",
            caption=f"{lr_text}. Reference: {reference}.",
        )
    )
    return section


def _measure(stats: MeasureStats | None, key: str) -> MeanSE | None:
    return stats.measure(key) if stats is not None else None


def _curve_values(curve: TheoryCurve, key: str) -> list[int | float | None]:
    values = curve.values(key)
    if values is None:  # as a missing key did before the record: the table cannot be built
        raise KeyError(key)
    return values


# Readable names of the theory artifact's keys (parameters, model conventions, quantities).
THEORY_NAMES = {
    "gamma": "γ (spurious fraction; Monte-Carlo check and λ/noise tables)",
    "x_inv": "‖x_inv‖ (invariant feature norm)",
    "x_sp": "‖x_sp‖ (spurious feature norm)",
    "sigma_inv": "σ_inv (noise variance along x_inv)",
    "sigma_sp": "σ_sp (noise variance along x_sp)",
    "lam": "λ (ridge penalty)",
    "noise": "input-noise variance",
    "convention": "model convention",
    "intercept": "intercept fitted",
    "spec": "SPEC §6 (no intercept)",
    "authors_convention_with_intercept": "authors' convention, with intercept",
    "as_configured": "as configured",
    "unit_norms": "unit norms",
    "w_inv": "w_inv (weight on x_inv)",
    "w_sp": "w_sp (weight on x_sp)",
    "bias": "bias",
    "clean_acc": "clean accuracy",
    "spurious_acc": "spurious accuracy",
    "prediction_difference": "prediction difference w_sp·x_sp",
}
ROUND_OFF = 1e-12


def theory_section(path: Path) -> Section | None:
    data = read_artifact(path, "rare_theory.json", RareTheoryArtifact)
    if data is None:
        return None
    section = Section("Theory: ridge regression on Paper B's toy model (§5, App. A, Fig. 10-11)", anchor="rare-theory")
    for figure in _drawn_all(lambda: figures_rare.theory_figures(data), "the theory figures"):
        section.add(figure)
    params = data.parameters
    section.add(
        Table(
            ["parameter", "value"],
            [[THEORY_NAMES.get(k, k), fmt(v, 4) if _is_num(v) else str(v)] for k, v in params.items()],
            title="toy model",
        )
    )
    curve = data.gamma_curve or TheoryCurve()
    gammas = curve.gamma
    if gammas:
        picks = sorted({0, 1, 2, min(5, len(gammas) - 1), len(gammas) // 4, len(gammas) // 2, len(gammas) - 1})
        rows = [
            [fmt(gammas[i], 4)]
            + [
                fmt((curve.values(k) or [None] * len(gammas))[i], 4)
                for k in (
                    "prediction_difference",
                    "clean_acc",
                    "spurious_acc",
                    "authors_clean_acc",
                    "authors_spurious_acc",
                )
            ]
            for i in picks
            if i < len(gammas)
        ]
        section.add(
            Table(
                [
                    "γ",
                    "prediction difference",
                    "clean acc",
                    "spurious acc",
                    "clean (authors' form)",
                    "spurious (authors' form)",
                ],
                rows,
                title="phase transition as γ leaves 0 (exact)",
                caption="exact population optimum; the authors' closed forms evaluated at the same data",
            )
        )
    for key, name in (("noise_curves", "input-noise variance"), ("lam_curves", "ridge λ")):
        family = data.curves(key)
        if not family:
            continue
        g = float(params.get("gamma", 0.0) or 0.0)
        rows = []
        for value, c in family.items():
            gs = c.gamma
            if not gs:
                continue
            i = min(range(len(gs)), key=lambda j: abs(gs[j] - g))
            rows.append(
                [value]
                + [fmt(_curve_values(c, k)[i], 4) for k in ("prediction_difference", "clean_acc", "spurious_acc")]
            )
        section.add(
            Table(
                [name, "prediction difference", "clean acc", "spurious acc"],
                rows,
                title=f"effect of the {name} at γ ≈ {g:g}",
            )
        )
    mc_rows = []
    for convention, check in data.monte_carlo.items():
        for q, v in check.quantities.items():
            mc_rows.append(
                [
                    THEORY_NAMES.get(convention, convention),
                    THEORY_NAMES.get(q, q),
                    fmt(v.exact, 5),
                    f"{fmt(v.mc_mean, 5)} ± {fmt(v.mc_se, 5)}",
                    fmt(v.abs_error, 5),
                ]
            )
    if mc_rows:
        section.add(
            Table(
                ["model", "quantity", "exact", "Monte Carlo (mean ± s.e.)", "|exact − MC|"],
                mc_rows,
                title="exact solution vs a Monte-Carlo ridge fit",
            )
        )
    comp_rows = []
    for case, forms in data.authors_comparison.items():
        exact, closed = forms.exact, forms.closed_form
        for q in ("clean_acc", "spurious_acc"):
            e, cf = exact.get(q), closed.get(q)
            diff = float(cf) - float(e) if _is_num(e) and _is_num(cf) else None
            if diff is not None and abs(diff) < ROUND_OFF:  # the same number up to float round-off
                diff = 0.0
            comp_rows.append(
                [THEORY_NAMES.get(case, case), THEORY_NAMES.get(q, q), fmt(e, 5), fmt(cf, 5), fmt(diff, 5)]
            )
    if comp_rows:
        section.add(
            Table(
                ["case", "quantity", "exact", "authors' closed form", "closed − exact"],
                comp_rows,
                title="the authors' closed forms vs the exact solution",
                caption="equal for unit norms ‖x_inv‖ = ‖x_sp‖ = 1; see docs/rare-theory.md for why they differ otherwise",
            )
        )
    return section
