"""Report figures as PNG bytes (matplotlib's Agg canvas, no pyplot state, no global backend)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

SPLIT_COLOURS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}
DPI = 90


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) if isinstance(v, (int, float)) and math.isfinite(v) else float("nan") for v in values]


def epoch_curves(
    stage: str,
    epochs: list[int],
    wga: dict[str, list[Any]],
    mean: dict[str, list[Any]],
    loss: list[Any],
    best_epoch: int | None,
) -> bytes:
    """Left: WGA (solid) and mean accuracy (dashed) per split; right: training loss."""
    has_loss = any(isinstance(v, (int, float)) for v in loss)
    fig, axes = _figure(9.5 if has_loss else 6.0, 3.4, ncols=2 if has_loss else 1)
    ax = axes[0]
    for split, values in wga.items():
        colour = SPLIT_COLOURS.get(split)
        ax.plot(epochs, [100 * v for v in _finite(values)], "-o", ms=3, color=colour, label=f"{split} WGA")
        if split in mean:
            ax.plot(
                epochs, [100 * v for v in _finite(mean[split])], "--", color=colour, alpha=0.6, label=f"{split} mean"
            )
    if best_epoch is not None:
        ax.axvline(best_epoch, color="grey", lw=0.8, ls=":", label=f"selected (epoch {best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{stage}: worst-group and mean accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if has_loss:
        axes[1].plot(epochs, _finite(loss), "-o", ms=3, color="#555555")
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("training loss")
        axes[1].set_title(f"{stage}: training loss")
        axes[1].grid(alpha=0.3)
    return _png(fig)


def error_bars(
    labels: list[str], means: list[Any], ses: list[Any], *, ylabel: str, title: str, paper: list[Any] | None = None
) -> bytes:
    """One bar per combination with its s.e.; published numbers as black diamonds."""
    fig, axes = _figure(max(4.5, 0.9 * len(labels) + 2.0), 3.6)
    ax = axes[0]
    x = list(range(len(labels)))
    heights = _finite(means)
    errors = [0.0 if not isinstance(s, (int, float)) or not math.isfinite(s) else float(s) for s in ses]
    ax.bar(
        x,
        [0.0 if math.isnan(h) else h for h in heights],
        yerr=errors,
        capsize=4,
        color="#4c72b0",
        alpha=0.85,
        label="ours (mean ± s.e.)",
    )
    if paper and any(isinstance(p, (int, float)) for p in paper):
        ax.plot(x, _finite(paper), "D", color="black", ms=6, label="paper")
    ax.set_xticks(
        x,
        labels,
        rotation=30 if max((len(s) for s in labels), default=0) > 10 else 0,
        ha="right" if max((len(s) for s in labels), default=0) > 10 else "center",
        fontsize=8,
    )
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    return _png(fig)


def grouped_bars(categories: list[str], series: dict[str, list[Any]], *, ylabel: str, title: str) -> bytes:
    """Bars per category (e.g. groups) for each series (e.g. interventions)."""
    fig, axes = _figure(max(5.0, 1.3 * len(categories) + 2.5), 3.6)
    ax = axes[0]
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [c + (i - (len(series) - 1) / 2) * width for c in range(len(categories))]
        ax.bar(xs, [0.0 if math.isnan(v) else v for v in _finite(values)], width=width, label=name)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(categories)), categories, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    if len(series) <= 12:
        ax.legend(fontsize=6)
    return _png(fig)
