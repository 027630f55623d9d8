"""Figures of the rare-correlation lab (Paper B), drawn from the stages' typed artifacts.

The engine writes ``artifacts/rare_*.json`` only; every figure is a view of one of those records,
drawn when a report is built (matplotlib's Agg canvas, no pyplot state, no global backend). The
rare-lab sections and the generic artifact listing draw through the same builders, so a figure
looks the same wherever it appears.

Conventions a reviewer expects: counts n on a symmetric-log axis ticked at the counts themselves
(0, 1, 3, 10 … rather than 10⁰), fractions on a fixed 0–1 scale, error bars = s.e. over seeds,
legends outside the data, and the reference a panel is read against (n = 0, chance) drawn in.
``figures_for(artifact_name, data)`` validates a raw table and returns its figures;
``LEGACY_PNGS`` names the PNG files older runs wrote beside the same tables.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from pydantic import JsonValue

from labconsole.engine.records import (
    MeanSE,
    MeasureStats,
    RareDeletionArtifact,
    RareMembershipArtifact,
    RareMitigationsArtifact,
    RareScoreArtifact,
    RareScoreArtifactCell,
    RareSensitivityArtifact,
    RareTheoryArtifact,
    RareWeightsArtifact,
    TheoryCurve,
    VersionedRecord,
)
from labconsole.report.doc import Figure
from labconsole.report.figures_rare_style import (
    GAMMA_LABEL,
    MEASURE_AXES,
    SERIES_STYLES,
    _axes,
    _errorbars,
    _frame,
    _legend_below,
    _png,
    _reference,
    _shared_legend,
    _value,
    count_axis,
)
from labconsole.report.rare_format import MEASURES, _seeds

A = TypeVar("A", bound=VersionedRecord)

# -- one builder per artifact ------------------------------------------------------------------------


def _stat(stats: MeasureStats | RareScoreArtifactCell | None, key: str) -> MeanSE:
    measure = stats.measure(key) if stats is not None else None
    return measure if measure is not None else MeanSE()


def score_figure(data: RareScoreArtifact) -> Figure:
    """Spurious score, clean and spurious accuracy vs n, one series per pattern (Fig. 2, 6)."""
    ns = list(data.n_values) or sorted({int(n) for per_n in data.per_pattern.values() for n in per_n})
    fig, axes = _axes(3)
    for ax, (key, title) in zip(axes, MEASURES):
        series = []
        for name, per_n in data.per_pattern.items():
            stats = [_stat(per_n.get(str(n)), key) for n in ns]
            series.append(
                {"label": f"pattern {name}", "x": ns, "mean": [s.mean for s in stats], "se": [s.se for s in stats]}
            )
        _errorbars(ax, series, dodge=True)
        count_axis(ax, ns)
        _frame(ax, f"{data.epsilon}-spurious score" if key == "score" else title, MEASURE_AXES[key])
    _shared_legend(fig, axes[0], ncol=7)
    return Figure(
        _png(fig),
        title="spurious score, clean and spurious accuracy vs n",
        caption=f"target class {data.target_class}; mean ± s.e. over {_seeds(data.seeds)} (error bars: s.e.)",
    )


def weights_figure(data: RareWeightsArtifact) -> Figure | None:
    """Pixel importance maps per n on one colour scale (Fig. 3); ``None`` without maps."""
    maps = [r.map for r in data.rows if r.map is not None]
    if not data.rows or len(maps) != len(data.rows):
        return None
    definition = data.definition or "max over hidden units of |first-layer weight| (older runs)"
    fig, axes = _axes(len(maps), size=(2.5, 2.7))
    values = [v for m in maps for row in m for v in row]
    # Signed importances can dip below 0: the scale then includes them (else it starts at 0).
    low, high = min(values + [0.0]), max(values + [0.0])
    shown = None
    for ax, image, row in zip(axes, maps, data.rows):
        shown = ax.imshow(image, cmap="Greys", vmin=low, vmax=high)
        ax.set_title(f"n = {row.n}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if shown is not None:
        fig.colorbar(shown, ax=axes, shrink=0.8, label="importance (first-layer weight)")
    return Figure(
        _png(fig),
        title=f"pixel importance, pattern {data.pattern}",
        caption=f"{definition}; darker = larger; one colour scale; one model per n (seed {data.seed})",
    )


def sensitivity_figure(data: RareSensitivityArtifact) -> Figure:
    """Mean true-class probability vs the fraction of non-zero pixels zeroed (Fig. 15)."""
    fig, axes = _axes(1, size=(5.6, 3.8))
    ax = axes[0]
    for k, (backbone, probs) in enumerate(data.true_class_probability.items()):
        params = data.model_parameters.get(backbone)
        label = f"{backbone} ({params:,} parameters)" if params else backbone
        ax.plot(list(data.fractions), [_value(v) for v in probs], SERIES_STYLES[k % 5], ms=3.5, lw=1.3, label=label)
    ax.set_xlabel("fraction of non-zero pixels zeroed")
    _frame(ax, "sensitivity to zeroed pixels", "mean true-class probability")
    _legend_below(ax)
    return Figure(
        _png(fig),
        title="mean true-class probability vs fraction of non-zero pixels zeroed",
        caption=f"clean models, {data.split} split, one model per architecture (no s.e.)",
    )


def membership_figure(data: RareMembershipArtifact) -> Figure:
    """The attack's accuracy and its member / non-member rates vs n (Fig. 5), chance at 0.5."""
    ns = sorted(int(n) for n in data.per_n)

    def series(key: str, label: str, style: str = "o-") -> dict[str, Any]:
        stats = {n: data.per_n[str(n)][key] for n in ns if key in data.per_n[str(n)]}
        xs = [n for n, s in stats.items() if isinstance(s.mean, (int, float))]
        return {
            "label": label,
            "x": xs,
            "mean": [stats[n].mean for n in xs],
            "se": [stats[n].se for n in xs],
            "style": style,
        }

    panels = (
        (
            "attack on members vs held-out non-members",
            "attack accuracy (fraction)",
            [
                series("accuracy", "accuracy"),
                series("balanced_accuracy", "balanced accuracy"),
                series("auc", "AUC", "s--"),
            ],
        ),
        (
            "rates: spurious members vs their counterpart",
            "fraction classified correctly",
            [
                series("member_accuracy", "members flagged member"),
                series("non_member_accuracy", "non-members flagged non-member"),
                series("spurious_member_accuracy", "spurious members flagged member"),
                series("patterned_non_member_accuracy", "patterned non-members flagged non-member", "s--"),
            ],
        ),
    )
    fig, axes = _axes(2, size=(5.0, 3.8))
    for k, (ax, (title, ylabel, all_series)) in enumerate(zip(axes, panels)):
        _errorbars(ax, [s for s in all_series if s["x"]], dodge=True)
        if k == 0:  # a constant guess scores 0.5 on the balanced measures
            _reference(ax, MeanSE(mean=0.5), "chance (0.5)")
        count_axis(ax, ns)
        _frame(ax, title, ylabel)
        _legend_below(ax)
    return Figure(
        _png(fig),
        title=f"membership inference, pattern {data.pattern}",
        caption=f"mean ± s.e. over {_seeds(data.seeds)} (error bars: s.e.); attack: {data.attack}",
    )


def mitigation_figures(data: RareMitigationsArtifact) -> list[Figure]:
    """Per method, the three measures vs strength, against the n = 0 model (Fig. 8, 12, 13).

    Strengths are not evenly spaced (0, 1e-5 … 1e-1): points sit at equal steps, labelled with
    the strength."""
    from labconsole.engine.rare.mitigations import MITIGATIONS

    out = []
    for method, cells in data.methods.items():
        label = MITIGATIONS[method][2] if method in MITIGATIONS else method
        xs = list(range(len(cells)))
        fig, axes = _axes(3)
        for ax, (key, title) in zip(axes, MEASURES):
            stats = [c.measure(key) or MeanSE() for c in cells]
            _errorbars(
                ax, [{"label": f"n = {data.n}", "x": xs, "mean": [s.mean for s in stats], "se": [s.se for s in stats]}]
            )
            _reference(ax, _stat(data.reference_n0, key), "n = 0, no mitigation (± s.e.)")
            ax.set_xticks(xs)
            ax.set_xticklabels([f"{c.strength:g}" for c in cells], rotation=30, fontsize=8)
            ax.set_xlabel(label)
            _frame(ax, title, MEASURE_AXES[key])
        _shared_legend(fig, axes[0])
        out.append(
            Figure(
                _png(fig),
                title=label,
                caption=f"pattern {data.pattern}, n = {data.n}; mean ± s.e. over {_seeds(data.seeds)}; "
                "dashed line and band: the n = 0 model without mitigation (mean ± s.e.)",
            )
        )
    return out


DELETION_STAGES = (
    ("before", "before deletion"),
    ("after", "after incremental retraining"),
    ("retrained_from_scratch", "trained without the deleted rows"),
)


def deletion_figure(data: RareDeletionArtifact) -> Figure:
    """The measures before deletion, after incremental retraining and retrained (App. C, Fig. 18)."""
    ns = sorted(int(n) for n in data.per_n)
    fig, axes = _axes(3)
    for ax, (key, title) in zip(axes, MEASURES):
        series = [
            {
                "label": label,
                "x": ns,
                "mean": [_stat(data.per_n[str(n)].get(stage), key).mean for n in ns],
                "se": [_stat(data.per_n[str(n)].get(stage), key).se for n in ns],
            }
            for stage, label in DELETION_STAGES
        ]
        _errorbars(ax, series, dodge=True)
        count_axis(ax, ns)
        _frame(ax, title, MEASURE_AXES[key])
    _shared_legend(fig, axes[0])
    lr = f"constant lr {data.deletion_lr} for {data.deletion_epochs} epochs"
    return Figure(
        _png(fig),
        title=f"pattern {data.pattern}: before and after deletion",
        caption=f"incremental retraining at {lr}; mean ± s.e. over {_seeds(data.seeds)} (error bars: s.e.)",
    )


def _line_panel(ax: Any, title: str, ylabel: str, series: Sequence[tuple[str, Sequence[float], Any, str]]) -> None:
    for label, x, y, style in series:
        ax.plot(list(x), [_value(v) for v in y], style, lw=1.3, label=label)
    ax.set_xlabel(GAMMA_LABEL)
    _frame(ax, title, ylabel, ylim=None)


def _values(curve: TheoryCurve, key: str) -> list[int | float | None]:
    values = curve.values(key)
    if values is None:  # a curve without the quantity cannot be drawn
        raise KeyError(key)
    return values


def theory_figures(data: RareTheoryArtifact) -> list[Figure]:
    """The phase transition in γ and the effect of input noise and of λ (§5, Fig. 10, 11)."""
    curve = data.gamma_curve
    if curve is None or not curve.gamma:
        return []
    g = curve.gamma
    fig, axes = _axes(2, size=(5.0, 3.6))
    _line_panel(
        axes[0],
        "prediction difference",
        "w_sp · x_sp (model output units)",
        [("exact", g, _values(curve, "prediction_difference"), "-")],
    )
    accuracy = [
        ("clean, exact", g, _values(curve, "clean_acc"), "C0-"),
        ("clean, authors' form", g, _values(curve, "authors_clean_acc"), "C0--"),
        ("spurious, exact", g, _values(curve, "spurious_acc"), "C1-"),
        ("spurious, authors' form", g, _values(curve, "authors_spurious_acc"), "C1--"),
    ]
    _line_panel(axes[1], "test accuracy", "test accuracy (fraction)", accuracy)
    _legend_below(axes[1])
    out = [
        Figure(
            _png(fig),
            title="phase transition in γ (spurious fraction)",
            caption="exact population ridge optimum; dashed: the authors' closed forms at the same data",
        )
    ]
    for key, what, name in (("noise_curves", "input noise", "input-noise variance"), ("lam_curves", "ridge λ", "λ =")):
        family = data.curves(key)
        if not family:
            continue
        fig, axes = _axes(3, size=(4.4, 3.4))
        for ax, (measure, title, ylabel) in zip(
            axes,
            (
                ("prediction_difference", "prediction difference", "w_sp · x_sp (model output units)"),
                ("clean_acc", "clean accuracy", "clean test accuracy (fraction)"),
                ("spurious_acc", "spurious accuracy", "spurious test accuracy (fraction)"),
            ),
        ):
            _line_panel(
                ax, title, ylabel, [(f"{name} {v}", c.gamma, _values(c, measure), "-") for v, c in family.items()]
            )
        _shared_legend(fig, axes[0], ncol=6)
        out.append(
            Figure(
                _png(fig),
                title=f"effect of the {what}",
                caption=f"exact population optimum, one curve per {name.rstrip(' =')}",
            )
        )
    return out


# -- artifacts by file name --------------------------------------------------------------------------


def _drawn_from(
    model: type[A], build: Callable[[A], Figure | list[Figure] | None]
) -> Callable[[dict[str, JsonValue]], list[Figure]]:
    """A raw table → its record → its figures; a table that does not fit its record raises (the
    caller notes it)."""

    def draw(data: dict[str, JsonValue]) -> list[Figure]:
        built = build(model.model_validate(data))
        return [] if built is None else [built] if isinstance(built, Figure) else list(built)

    return draw


FIGURES: dict[str, Callable[[dict[str, JsonValue]], list[Figure]]] = {
    "rare_score.json": _drawn_from(RareScoreArtifact, score_figure),
    "rare_weights.json": _drawn_from(RareWeightsArtifact, weights_figure),
    "rare_sensitivity.json": _drawn_from(RareSensitivityArtifact, sensitivity_figure),
    "rare_mitigations.json": _drawn_from(RareMitigationsArtifact, mitigation_figures),
    "rare_deletion.json": _drawn_from(RareDeletionArtifact, deletion_figure),
    "rare_membership.json": _drawn_from(RareMembershipArtifact, membership_figure),
    "rare_theory.json": _drawn_from(RareTheoryArtifact, theory_figures),
}

# PNG files (glob patterns) that runs written before the figures moved to the report kept beside
# each table; they show the same figures.
LEGACY_PNGS: dict[str, tuple[str, ...]] = {
    "rare_score.json": ("rare_score.png",),
    "rare_weights.json": ("rare_weights.png",),
    "rare_sensitivity.json": ("rare_sensitivity.png",),
    "rare_mitigations.json": ("rare_mitigation_*.png",),
    "rare_deletion.json": ("rare_deletion.png",),
    "rare_membership.json": ("rare_membership.png",),
    "rare_theory.json": ("rare_theory_*.png",),
}


def figures_for(artifact: str, data: object) -> list[Figure]:
    """The figures drawn from one rare artifact (``[]`` for any other file or a non-table)."""
    build = FIGURES.get(artifact)
    if build is None or not isinstance(data, dict):
        return []
    return build(data)


def legacy_pngs(artifact: str, names: Iterable[str]) -> set[str]:
    """Of ``names`` (files in ``artifacts/``), those an older run wrote for ``artifact``."""
    patterns = LEGACY_PNGS.get(artifact, ())
    return {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)}
