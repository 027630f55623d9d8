"""Paper A Figure 10 drawn from the GradCAM stage's artifacts: rows = images, columns = the image,
then one heat-map overlay per model (ERM, fine-tuned).

The engine writes ``artifacts/gradcam.json`` (models, per-image labels) and
``artifacts/gradcam.npz`` (``images`` uint8 [N, C, H, W], ``cams`` [models, N, H, W] in [0, 1]);
this module turns them into PNG bytes when a report is built (matplotlib's Agg canvas).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from labconsole.engine.records import GradcamSection

DPI = 110
META = "gradcam.json"


def load_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images [N, H, W, C] uint8, cams [models, N, H, W]) from the stage's NPZ; a file that is not
    one raises ``ValueError`` naming it."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            images, cams = arrays["images"], arrays["cams"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path.name}: expected an NPZ with `images` and `cams` ({exc})") from None
    if images.ndim != 4 or cams.ndim != 4 or cams.shape[1] != images.shape[0]:
        raise ValueError(f"{path.name}: images {images.shape} and cams {cams.shape} do not match")
    return images.transpose(0, 2, 3, 1), cams.astype(np.float32)


def gradcam_panels(meta: GradcamSection, images: np.ndarray, cams: np.ndarray) -> bytes:
    """One row per image; its label (group, both predictions) on the left."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = meta.models or [f"model {i}" for i in range(len(cams))]
    labels = meta.labels or meta.groups or [""] * len(images)
    rows, cols = len(images), 1 + len(cams)
    fig = Figure(figsize=(2.2 * cols, 2.2 * rows), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        picture = images[r]
        gray = picture.shape[2] == 1
        shown = picture[:, :, 0] if gray else picture
        axes[r][0].imshow(shown, cmap="gray" if gray else None)
        axes[r][0].set_ylabel(labels[r] if r < len(labels) else "", fontsize=7)
        for c, title in enumerate(models, start=1):
            axes[r][c].imshow(shown, cmap="gray" if gray else None)
            axes[r][c].imshow(cams[c - 1][r], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            if r == 0:
                axes[r][c].set_title(title, fontsize=8)
        if r == 0:
            axes[r][0].set_title("image", fontsize=8)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def figure_from_run(artifacts: Path, meta: GradcamSection) -> bytes:
    """The figure of a run whose ``artifacts/`` holds the stage's JSON (``meta``) and NPZ."""
    npz = artifacts.parent / (meta.arrays or "artifacts/gradcam.npz")
    images, cams = load_arrays(npz)
    return gradcam_panels(meta, images, cams)
