"""PNG figures for the rare-correlation stages (matplotlib's Agg canvas; no global backend change).

A figure that fails to render (e.g. a broken font cache) is logged by the caller and skipped:
the JSON tables are the results, figures are views of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (5.0, 3.6)) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def error_bar_panels(path: Path, panels: Sequence[dict[str, Any]], *, symlog_x: bool = False) -> Path:
    """One panel per dict: {"title", "xlabel", "ylabel", "series": [{"label", "x", "mean", "se"}]}."""
    fig, axes = _figure(ncols=len(panels))
    for ax, panel in zip(axes[0], panels):
        for series in panel["series"]:
            se = [0.0 if v is None else v for v in series.get("se", [0.0] * len(series["x"]))]
            ax.errorbar(series["x"], series["mean"], yerr=se, marker="o", ms=3, capsize=2, label=series["label"])
        if symlog_x:
            ax.set_xscale("symlog", linthresh=1.0)
        ax.set_title(panel.get("title", ""))
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(alpha=0.3)
        if len(panel["series"]) > 1:
            ax.legend(fontsize=7)
    return _save(fig, path)


def heatmaps(path: Path, maps: Sequence[Any], titles: Sequence[str], *, shared_scale: bool = True) -> Path:
    """Grey heatmaps side by side (darker = larger), e.g. MLP pixel importance per n."""
    fig, axes = _figure(ncols=len(maps), size=(2.6, 2.8))
    vmax = max(float(m.max()) for m in maps) if shared_scale else None
    for ax, image, title in zip(axes[0], maps, titles):
        shown = ax.imshow(image.numpy() if hasattr(image, "numpy") else image, cmap="Greys", vmin=0.0, vmax=vmax)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=list(axes[0]), shrink=0.8)
    fig.savefig(path, format="png")
    return path


def curves(path: Path, panels: Sequence[dict[str, Any]]) -> Path:
    """Line panels: {"title", "xlabel", "ylabel", "series": [{"label", "x", "y", "style"?}]}."""
    fig, axes = _figure(ncols=len(panels))
    for ax, panel in zip(axes[0], panels):
        for series in panel["series"]:
            ax.plot(series["x"], series["y"], series.get("style", "-"), label=series["label"], lw=1.3)
        if panel.get("xscale"):
            ax.set_xscale(panel["xscale"])
        ax.set_title(panel.get("title", ""))
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)
