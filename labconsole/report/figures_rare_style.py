"""Drawing conventions of the rare-lab figures (``figures_rare``): axes, markers, error bars,
legends below the data, reference lines and the symlog count axis ticked at the counts."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from labconsole.engine.records import MeanSE

# Distinct markers and dashes, so series that coincide (a score of 1.0 before and after) stay visible.
SERIES_STYLES = ("o-", "s--", "^:", "D-.", "v-")
FRACTION_LIMITS = (-0.03, 1.03)
COUNT_LABEL = "spurious training examples n (count, symlog)"
GAMMA_LABEL = "γ: spurious fraction of training examples"
# y labels of the three spurious-score measures, with their unit.
MEASURE_AXES = {
    "score": "spurious score (fraction of test images)",
    "clean_acc": "clean test accuracy (fraction)",
    "spurious_acc": "spurious test accuracy (fraction)",
}


# -- drawing primitives ------------------------------------------------------------------------------


def _axes(ncols: int, size: tuple[float, float] = (4.6, 3.4)) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    # Constrained layout keeps a legend placed "outside" the axes inside the image.
    fig = MplFigure(figsize=(size[0] * ncols, size[1]), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(1, ncols, squeeze=False)[0])


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _value(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _se(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else 0.0


def _shared_legend(fig: Any, ax: Any, ncol: int = 4) -> None:
    """One legend under all panels (the panels share their series), never over the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(ncol, len(handles)), fontsize=8)


def _legend_below(ax: Any, ncol: int = 2) -> None:
    """A panel's own legend, under its x label."""
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, fontsize=7, frameon=False)


def count_axis(ax: Any, ns: Sequence[int]) -> None:
    """Symmetric-log x axis over spurious counts, ticked at the counts used, labelled as integers
    (matplotlib's default labels n = 1 as "10⁰")."""
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xticks(list(ns))
    ax.set_xticklabels([str(n) for n in ns])
    ax.minorticks_off()
    ax.margins(x=0.08)  # room for the sideways-nudged end points
    ax.set_xlabel(COUNT_LABEL)


def _dodged(xs: Sequence[float], k: int, m: int) -> list[float]:
    """Series ``k`` of ``m`` nudged sideways on the count axis, so coinciding means and their
    error bars stay apart (a small factor on the log part, a small step at n = 0)."""
    off = k - (m - 1) / 2
    return [x * 10 ** (0.02 * off) if x > 0 else 0.05 * off for x in xs]


def _errorbars(ax: Any, series: Sequence[dict[str, Any]], *, dodge: bool = False) -> None:
    """Series {"label", "x", "mean", "se", "style"?}: mean with ± s.e. bars."""
    for k, s in enumerate(series):
        ax.errorbar(
            _dodged(s["x"], k, len(series)) if dodge else s["x"],
            [_value(v) for v in s["mean"]],
            yerr=[_se(v) for v in s["se"]],
            fmt=s.get("style", SERIES_STYLES[k % len(SERIES_STYLES)]),
            ms=3.5,
            capsize=2.5,
            lw=1.3,
            label=s["label"],
        )


def _reference(ax: Any, ref: MeanSE | None, label: str) -> None:
    """A dashed line (and its ± s.e. band) for the value a panel is read against."""
    if ref is None or not isinstance(ref.mean, (int, float)) or not math.isfinite(ref.mean):
        return
    r, rse = float(ref.mean), _se(ref.se)
    ax.axhline(r, color="grey", ls="--", lw=1.0, label=label)
    if rse:
        ax.axhspan(r - rse, r + rse, color="grey", alpha=0.15, lw=0)


def _frame(ax: Any, title: str, ylabel: str, ylim: tuple[float, float] | None = FRACTION_LIMITS) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
