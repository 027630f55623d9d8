"""Stage I figures drawn from the tracing and overlap tables (Paper A Figure 7 and Figure 3).

The engine writes ``artifacts/stage1_tracing.json`` and ``artifacts/stage1_overlap.json``; these
functions turn them (or the compact copies in ``summary.json``) into PNG bytes when a report is
built (matplotlib's Agg canvas, no pyplot state, no global backend).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

from labconsole.engine.records import OverlapDirection, OverlapKind, OverlapSection, TracingSection

DPI = 110
OVERLAP_PANELS = (
    ("top_gradient_by_magnitude_rank", "top {p}% gradient → magnitude rank"),
    ("top_magnitude_by_gradient_rank", "top {p}% magnitude → gradient rank"),
)


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _png(fig: Any, **savefig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **savefig)
    return buffer.getvalue()


def _tracing(data: TracingSection | Mapping[str, object]) -> TracingSection:
    return data if isinstance(data, TracingSection) else TracingSection.model_validate(dict(data))


def tracing_split(data: TracingSection | Mapping[str, object]) -> str:
    """The split the heat map shows: the first traced one (the summary copy lists none: the
    first split of the first matrix)."""
    record = _tracing(data)
    if record.splits:
        return str(record.splits[0])
    for per_split in record.matrices.values():
        if per_split:
            return str(next(iter(per_split)))
    return "train"


def tracing_heatmap(data: TracingSection | Mapping[str, object]) -> bytes:
    """One diverging heat map (layers × groups, Δpp) per criterion, for the first split, on one
    colour scale centred on 0 so criteria and the random control compare at a glance."""
    record = _tracing(data)
    split = tracing_split(record)
    layers, groups = list(record.layers), list(record.groups)
    criteria = list(record.matrices)
    values = [
        [[float("nan") if v is None else float(v) for v in row] for row in record.matrices[c].get(split, [])]
        for c in criteria
    ]
    limit = max([abs(v) for m in values for row in m for v in row if not math.isnan(v)] + [1.0])
    height = max(3.0, 0.35 * len(layers) + 1.5)
    fig, axes = _figure(3.2 * len(criteria) + 1.5, height, ncols=len(criteria))
    from matplotlib import colormaps

    cmap = colormaps["RdBu"].with_extremes(bad="#bbbbbb")  # grey: no example of the group in the split
    image = None
    for ax, criterion, matrix in zip(axes[0], criteria, values):
        image = ax.imshow(matrix, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
        ax.set_title(criterion if criterion != "control" else "control (random)", fontsize=9)
        ax.set_xticks(range(len(groups)), groups, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(layers)), layers if ax is axes[0][0] else [""] * len(layers), fontsize=7)
    fig.colorbar(image, ax=axes[0].tolist(), label=f"Δ {split} accuracy (pp)")
    # Above the panel titles (the tight bounding box keeps it in the image).
    fig.suptitle(
        f"Zeroing the top-{'?' if record.k is None else record.k} neurons of each layer ({split})", fontsize=10, y=1.02
    )
    return _png(fig, bbox_inches="tight")


def _directions(info: OverlapKind) -> dict[str, tuple[OverlapDirection | None, list[int]]]:
    """Each direction of ``OVERLAP_PANELS``: the artifact's full entry and the summary's copy."""
    return {
        "top_gradient_by_magnitude_rank": (info.top_gradient_by_magnitude_rank, info.top_gradient_by_magnitude_hist),
        "top_magnitude_by_gradient_rank": (info.top_magnitude_by_gradient_rank, info.top_magnitude_by_gradient_hist),
    }


def overlap_histogram(info: OverlapKind | Mapping[str, object], key: str) -> list[int] | None:
    """A histogram of one overlap direction, from the artifact (``{key: {"histogram"}}``) or the
    summary copy (``{key without _rank + _hist: [...]}``)."""
    kind = info if isinstance(info, OverlapKind) else OverlapKind.model_validate(dict(info))
    full, compact = _directions(kind)[key]
    if full is not None and full.histogram:
        return list(full.histogram)
    return list(compact) if compact else None


def overlap_histograms(data: OverlapSection | Mapping[str, object]) -> bytes:
    """Per layer type, the percentile ranks of one criterion's top neurons under the other."""
    record = data if isinstance(data, OverlapSection) else OverlapSection.model_validate(dict(data))
    kinds = list(record.kinds)
    edges = [float(e) for e in record.bins]
    width = edges[1] - edges[0]
    percent = record.top_percent
    fig, axes = _figure(9.0, 2.8 * len(kinds), nrows=len(kinds), ncols=2)
    for row, kind in zip(axes, kinds):
        for ax, (key, title) in zip(row, OVERLAP_PANELS):
            hist = overlap_histogram(record.kinds[kind], key) or [0] * (len(edges) - 1)
            ax.bar(edges[:-1], hist, width=width, align="edge", edgecolor="black")
            ax.set_xlim(0, 100)
            label = f"{percent:g}" if isinstance(percent, (int, float)) else "?"
            ax.set_title(f"{kind}: {title.format(p=label)}", fontsize=9)
            ax.set_xlabel("percentile rank among neurons of this layer type (%)", fontsize=8)
    fig.tight_layout()
    return _png(fig)
