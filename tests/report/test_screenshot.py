"""report.html opened in headless Chromium shows its plots (skipped where Chromium is absent)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_fixtures import make_run

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_report.sh"


def _coloured_pixels(png: Path) -> int:
    """Pixels that are clearly coloured (tables and text are black/grey/white; plots are not)."""
    import numpy as np
    from PIL import Image

    hsv = np.asarray(Image.open(png).convert("HSV"))
    return int(((hsv[..., 1] > 120) & (hsv[..., 2] > 80)).sum())


@pytest.mark.skipif(
    not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
    reason="no chromium on this machine",
)
def test_report_renders_with_visible_plots_in_headless_chromium(tmp_path: Path) -> None:
    with_plots = make_run(tmp_path / "a", extras=True)
    without = make_run(tmp_path / "b", stage1=False, extras=False)
    shots = []
    for run in (with_plots, without):
        out = tmp_path / f"{run.path.parent.name}.png"
        result = subprocess.run(
            ["bash", str(SCRIPT), str(run.path), str(out), "3000"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
        )
        assert result.returncode == 0, result.stderr
        shots.append(_coloured_pixels(out))
    # The run with Stage I bars, a tracing map and a GradCAM image shows far more colour than the
    # one with only the curves: the embedded base64 images are decoded and drawn.
    assert shots[1] > 2000, shots
    assert shots[0] > shots[1] + 5000, shots
