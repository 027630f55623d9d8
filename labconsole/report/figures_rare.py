"""Figures of the rare-correlation lab (Paper B), drawn from the stages' JSON artifacts.

The engine writes ``artifacts/rare_*.json`` only; every figure is a view of one of those tables,
drawn here when a report is built (matplotlib's Agg canvas, no pyplot state, no global backend).
``figures_for(artifact_name, data)`` returns the figures of one artifact (none for an unknown
name); ``LEGACY_PNGS`` names the PNG files older runs wrote beside the same tables, so a report
of such a run shows the drawn figure once instead of both.
"""

from __future__ import annotations

import fnmatch
import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from labconsole.engine.records import RareTheoryArtifact, TheoryCurve, validate_leniently
from labconsole.report.doc import Figure

MEASURES = ("score", "clean_acc", "spurious_acc")
STAGES = ("before", "after", "retrained_from_scratch")


# -- drawing primitives ------------------------------------------------------------------------------


def _figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (5.0, 3.6)) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(size[0] * ncols, size[1] * nrows), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _png(fig: Any, *, tight: bool = True) -> bytes:
    if tight:
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def error_bar_panels(panels: Sequence[dict[str, Any]], *, symlog_x: bool = False) -> bytes:
    """One panel per dict: {"title", "xlabel", "ylabel", "series": [{"label", "x", "mean", "se"}]}."""
    fig, axes = _figure(ncols=len(panels))
    for ax, panel in zip(axes[0], panels):
        for series in panel["series"]:
            se = [0.0 if v is None else v for v in series.get("se", [0.0] * len(series["x"]))]
            mean = [_number(v) for v in series["mean"]]
            ax.errorbar(series["x"], mean, yerr=se, marker="o", ms=3, capsize=2, label=series["label"])
        if symlog_x:
            ax.set_xscale("symlog", linthresh=1.0)
            # Tick the counts themselves: the default labels n = 1 as "10⁰".
            ticks = sorted({int(x) for series in panel["series"] for x in series["x"]})
            ax.set_xticks(ticks)
            ax.set_xticklabels([str(t) for t in ticks])
            ax.minorticks_off()
        ax.set_title(panel.get("title", ""))
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(alpha=0.3)
        if len(panel["series"]) > 1:
            ax.legend(fontsize=7)
    return _png(fig)


def heatmaps(maps: Sequence[Sequence[Sequence[float]]], titles: Sequence[str], *, shared_scale: bool = True) -> bytes:
    """Grey heatmaps side by side (darker = larger), e.g. MLP pixel importance per n."""
    fig, axes = _figure(ncols=len(maps), size=(2.6, 2.8))
    vmax = max(max(max(row) for row in m) for m in maps) if shared_scale else None
    # Signed importances can dip below 0; the scale then starts there (else at 0, white).
    vmin = min(0.0, min(min(min(row) for row in m) for m in maps))
    shown = None
    for ax, image, title in zip(axes[0], maps, titles):
        shown = ax.imshow(image, cmap="Greys", vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=list(axes[0]), shrink=0.8)
    return _png(fig, tight=False)  # tight_layout fights the shared colour bar


def curves(panels: Sequence[dict[str, Any]]) -> bytes:
    """Line panels: {"title", "xlabel", "ylabel", "series": [{"label", "x", "y", "style"?}]}."""
    fig, axes = _figure(ncols=len(panels))
    for ax, panel in zip(axes[0], panels):
        for series in panel["series"]:
            y = [_number(v) for v in series["y"]]
            ax.plot(series["x"], y, series.get("style", "-"), label=series["label"], lw=1.3)
        if panel.get("xscale"):
            ax.set_xscale(panel["xscale"])
        ax.set_title(panel.get("title", ""))
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _png(fig)


# -- one builder per artifact ------------------------------------------------------------------------


def _ns(per_n: dict[str, Any]) -> list[int]:
    return sorted(int(n) for n in per_n)


def score(data: dict[str, Any]) -> list[Figure]:
    """``rare_score.json``: spurious score, clean and spurious accuracy vs n (Paper B Fig. 2, 6)."""
    table: dict[str, dict[str, Any]] = data["per_pattern"]
    ns = [int(n) for n in data.get("n_values") or _ns(next(iter(table.values()), {}))]

    def panel(measure: str, title: str) -> dict[str, Any]:
        return {
            "title": title,
            "xlabel": "spurious examples n",
            "ylabel": measure,
            "series": [
                {
                    "label": pattern,
                    "x": ns,
                    "mean": [per_n[str(n)][measure]["mean"] for n in ns],
                    "se": [per_n[str(n)][measure]["se"] for n in ns],
                }
                for pattern, per_n in table.items()
            ],
        }

    png = error_bar_panels(
        [
            panel("score", f"{data.get('epsilon')}-spurious score"),
            panel("clean_acc", "clean test accuracy"),
            panel("spurious_acc", "spurious test accuracy"),
        ],
        symlog_x=True,
    )
    return [Figure(png, title="spurious score and accuracies vs n", caption="mean ± s.e. over seeds")]


def weights(data: dict[str, Any]) -> list[Figure]:
    """``rare_weights.json``: MLP pixel importance per n (Paper B Fig. 3)."""
    rows = data["rows"]
    png = heatmaps([r["map"] for r in rows], [f"n = {r['n']}" for r in rows])
    definition = data.get("definition") or "max |first-layer weight| per pixel"
    caption = f"{definition}; pattern {data.get('pattern')}, seed {data.get('seed')}"
    return [Figure(png, title="pixel importance heatmaps", caption=caption)]


def sensitivity(data: dict[str, Any]) -> list[Figure]:
    """``rare_sensitivity.json``: true-class probability vs fraction of zeroed pixels (Fig. 15)."""
    fractions = data["fractions"]
    series = [
        {"label": backbone, "x": fractions, "y": probs, "style": "o-"}
        for backbone, probs in data["true_class_probability"].items()
    ]
    png = curves(
        [
            {
                "title": "sensitivity to zeroed pixels",
                "xlabel": "fraction of non-zero pixels zeroed",
                "ylabel": "mean true-class probability",
                "series": series,
            }
        ]
    )
    return [Figure(png, title="sensitivity curves", caption=f"on the {data.get('split', 'train')} split")]


def mitigations(data: dict[str, Any]) -> list[Figure]:
    """``rare_mitigations.json``: one figure per mitigation method (Paper B Fig. 8, 12, 13)."""
    from labconsole.engine.rare.mitigations import MITIGATIONS

    out = []
    for method, cells in data["methods"].items():
        xs = list(range(len(cells)))  # strengths are not evenly spaced: plot by index, label ticks
        title = MITIGATIONS[method][2] if method in MITIGATIONS else method
        panels = [
            {
                "title": title,
                "xlabel": "strength index " + str([c["strength"] for c in cells]),
                "ylabel": m,
                "series": [
                    {"label": m, "x": xs, "mean": [c[m]["mean"] for c in cells], "se": [c[m]["se"] for c in cells]}
                ],
            }
            for m in MEASURES
        ]
        out.append(
            Figure(
                error_bar_panels(panels),
                title=f"mitigation sweep: {method}",
                caption=f"pattern {data.get('pattern')}, n = {data.get('n')}; mean ± s.e. over seeds",
            )
        )
    return out


def deletion(data: dict[str, Any]) -> list[Figure]:
    """``rare_deletion.json``: spurious score before/after incremental retraining (App. C, Fig. 18)."""
    table = data["per_n"]
    ns = _ns(table)
    panel = {
        "title": f"{data.get('pattern')}: incremental retraining (lr {data.get('deletion_lr')})",
        "xlabel": "spurious examples n",
        "ylabel": "spurious score",
        "series": [
            {
                "label": stage,
                "x": ns,
                "mean": [table[str(n)][stage]["score"]["mean"] for n in ns],
                "se": [table[str(n)][stage]["score"]["se"] for n in ns],
            }
            for stage in STAGES
        ],
    }
    return [Figure(error_bar_panels([panel], symlog_x=True), title="data deletion", caption="mean ± s.e. over seeds")]


def membership(data: dict[str, Any]) -> list[Figure]:
    """``rare_membership.json``: membership-inference attack accuracy vs n (Paper B Fig. 5)."""
    table = data["per_n"]
    ns = _ns(table)
    series = [
        {
            "label": label,
            "x": xs,
            "mean": [table[str(n)][key]["mean"] for n in xs],
            "se": [table[str(n)][key]["se"] for n in xs],
        }
        for key, label, xs in (
            ("accuracy", "all examples", ns),
            ("spurious_member_accuracy", "spurious members", [n for n in ns if n > 0]),
        )
    ]
    panel = {
        "title": f"membership inference ({data.get('pattern')})",
        "xlabel": "spurious examples n",
        "ylabel": "attack accuracy",
        "series": series,
    }
    png = error_bar_panels([panel], symlog_x=True)
    return [Figure(png, title="membership inference", caption="mean ± s.e. over seeds")]


def _measure(curve: TheoryCurve, key: str) -> list[int | float | None]:
    values = curve.values(key)
    if values is None:  # a curve without the quantity cannot be drawn
        raise KeyError(key)
    return values


def theory(data: dict[str, Any]) -> list[Figure]:
    """``rare_theory.json``: the phase transition in γ and the effect of noise and λ (§5, Fig. 10/11)."""
    along = data["gamma_curve"]
    gamma = along["gamma"]
    exact = curves(
        [
            {
                "title": "prediction difference w_s·x_sp",
                "xlabel": "γ",
                "ylabel": "prediction difference",
                "series": [{"label": "exact", "x": gamma, "y": along["prediction_difference"]}],
            },
            {
                "title": "test accuracy",
                "xlabel": "γ",
                "ylabel": "accuracy",
                "series": [
                    {"label": "clean (exact)", "x": gamma, "y": along["clean_acc"]},
                    {"label": "spurious (exact)", "x": gamma, "y": along["spurious_acc"]},
                    {"label": "clean (authors' form)", "x": gamma, "y": along["authors_clean_acc"], "style": "--"},
                    {
                        "label": "spurious (authors' form)",
                        "x": gamma,
                        "y": along["authors_spurious_acc"],
                        "style": "--",
                    },
                ],
            },
        ]
    )
    out = [Figure(exact, title="phase transition in γ (spurious fraction)")]
    record, _problems = validate_leniently(RareTheoryArtifact, data, "artifacts/rare_theory.json")
    for key, name, what in (("noise_curves", "noise", "noise"), ("lam_curves", "λ", "ridge λ")):
        family = record.curves(key)
        if not family:
            continue

        def series(measure: str, family: dict[str, TheoryCurve] = family, name: str = name) -> list[Any]:
            return [{"label": f"{name}={v}", "x": c.gamma, "y": _measure(c, measure)} for v, c in family.items()]

        png = curves(
            [
                {
                    "title": "prediction difference",
                    "xlabel": "γ",
                    "ylabel": "w_s·x_sp",
                    "series": series("prediction_difference"),
                },
                {"title": "clean accuracy", "xlabel": "γ", "ylabel": "accuracy", "series": series("clean_acc")},
                {"title": "spurious accuracy", "xlabel": "γ", "ylabel": "accuracy", "series": series("spurious_acc")},
            ]
        )
        out.append(Figure(png, title=f"effect of the {what}"))
    return out


FIGURES: dict[str, Callable[[dict[str, Any]], list[Figure]]] = {
    "rare_score.json": score,
    "rare_weights.json": weights,
    "rare_sensitivity.json": sensitivity,
    "rare_mitigations.json": mitigations,
    "rare_deletion.json": deletion,
    "rare_membership.json": membership,
    "rare_theory.json": theory,
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


def figures_for(artifact: str, data: Any) -> list[Figure]:
    """The figures drawn from one rare artifact (``[]`` for any other file or a non-table)."""
    build = FIGURES.get(artifact)
    if build is None or not isinstance(data, dict):
        return []
    return build(data)


def legacy_pngs(artifact: str, names: Iterable[str]) -> set[str]:
    """Of ``names`` (files in ``artifacts/``), those an older run wrote for ``artifact``."""
    patterns = LEGACY_PNGS.get(artifact, ())
    return {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)}
