"""Figures of the rare-lab report sections: error-bar panels over n with the counts themselves as
tick labels, and mitigation panels over strengths with the n = 0 reference drawn in.

Drawn on matplotlib's Agg canvas (no pyplot state); each function returns PNG bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from labconsole.engine.records import MeanSE

# Distinct markers and dashes, so series that coincide (a score of 1.0 before and after) stay visible.
SERIES_STYLES = ("o-", "s--", "^:", "D-.", "v-")


def _axes(ncols: int, size: tuple[float, float] = (4.6, 3.4)) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1]), dpi=110)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _png(fig: Any) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _value(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def count_axis(ax: Any, ns: Sequence[int]) -> None:
    """Symmetric-log x axis over spurious counts, ticked at the counts used, labelled as integers
    (matplotlib's default labels n = 1 as "10⁰")."""
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xticks(list(ns))
    ax.set_xticklabels([str(n) for n in ns])
    ax.minorticks_off()
    ax.set_xlabel("spurious examples n")


def count_panels(panels: Sequence[dict[str, Any]], ns: Sequence[int]) -> bytes:
    """Panels {"title", "ylabel", "series": [{"label", "x", "mean", "se", "style"?}]} over n."""
    fig, axes = _axes(len(panels))
    for ax, panel in zip(axes, panels):
        for k, series in enumerate(panel["series"]):
            mean = [_value(v) for v in series["mean"]]
            se = [0.0 if not isinstance(v, (int, float)) else float(v) for v in series["se"]]
            ax.errorbar(
                series["x"],
                mean,
                yerr=se,
                fmt=series.get("style", SERIES_STYLES[k % len(SERIES_STYLES)]),
                ms=3.5,
                capsize=2.5,
                lw=1.3,
                label=series["label"],
            )
        count_axis(ax, ns)
        ax.set_title(panel.get("title", ""), fontsize=10)
        ax.set_ylabel(panel.get("ylabel", ""))
        if panel.get("ylim"):
            ax.set_ylim(*panel["ylim"])
        ax.grid(alpha=0.3)
        if len(panel["series"]) > 1:
            ax.legend(fontsize=7)
    return _png(fig)


def strength_panels(
    strengths: Sequence[float],
    panels: Sequence[dict[str, Any]],
    xlabel: str,
) -> bytes:
    """Panels {"title", "ylabel", "mean", "se", "reference": MeanSE | None} over strengths.

    Strengths are not evenly spaced (0, 1e-5 … 1e-1): points sit at equal steps, labelled with the
    strength; the dashed line and band are the n = 0 model without mitigation (mean ± s.e.)."""
    fig, axes = _axes(len(panels))
    xs = list(range(len(strengths)))
    for ax, panel in zip(axes, panels):
        mean = [_value(v) for v in panel["mean"]]
        se = [0.0 if not isinstance(v, (int, float)) else float(v) for v in panel["se"]]
        ax.errorbar(xs, mean, yerr=se, fmt="o-", ms=3.5, capsize=2.5, lw=1.3, label=f"n = {panel.get('n', '?')}")
        ref = panel.get("reference")
        if isinstance(ref, MeanSE) and isinstance(ref.mean, (int, float)):
            r, rse = float(ref.mean), float(ref.se or 0.0)
            ax.axhline(r, color="grey", ls="--", lw=1.0, label="n = 0, no mitigation")
            ax.axhspan(r - rse, r + rse, color="grey", alpha=0.15, lw=0)
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{s:g}" for s in strengths], rotation=30, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_title(panel.get("title", ""), fontsize=10)
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _png(fig)


def signed_heatmaps(maps: Sequence[Sequence[Sequence[float]]], titles: Sequence[str], label: str) -> bytes:
    """Pixel-importance maps on one colour scale that includes negative values when there are any."""
    fig, axes = _axes(len(maps), size=(2.5, 2.7))
    values = [v for m in maps for row in m for v in row]
    low, high = min(values + [0.0]), max(values + [0.0])
    shown = None
    for ax, image, title in zip(axes, maps, titles):
        shown = ax.imshow(image, cmap="Greys", vmin=low, vmax=high)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if shown is not None:
        fig.colorbar(shown, ax=list(axes), shrink=0.8, label=label)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")  # tight_layout fights the shared colour bar
    return buffer.getvalue()


def count_panels_linear(fractions: Sequence[float], curves: Mapping[str, Sequence[float]]) -> bytes:
    """One panel of curves over a linear x (the sensitivity study: fraction of pixels zeroed)."""
    fig, axes = _axes(1, size=(5.2, 3.6))
    ax = axes[0]
    for label, ys in curves.items():
        ax.plot(list(fractions), [_value(v) for v in ys], "o-", ms=3.5, lw=1.3, label=label)
    ax.set_xlabel("fraction of non-zero pixels zeroed")
    ax.set_ylabel("mean true-class probability")
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)
