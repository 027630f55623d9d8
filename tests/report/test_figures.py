"""The report draws every figure from the engine's data artifacts (tracing, overlap, GradCAM,
rare lab), shows an older run's PNG of the same figure once, and turns a bad table into a note."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_fixtures import GROUPS, make_run, tiny_png

from labconsole.engine.runs import atomic_write_bytes
from labconsole.engine.train.gradcam import GRADCAM_JSON, GRADCAM_NPZ, gradcam_arrays
from labconsole.report import write_report
from labconsole.report.figures_rare import FIGURES

TRACING = {
    "layers": ["layer1.conv1", "layer2.conv1"],
    "groups": GROUPS,
    "k": 1,
    "splits": ["train"],
    "matrices": {
        "gradient": {"train": [[-1.0, -20.0, 3.0, 0.0], [0.5, None, -40.0, 1.0]]},
        "control": {"train": [[0.1, 0.0, -0.2, 0.0], [0.0, 0.1, 0.0, 0.0]]},
    },
}
OVERLAP = {
    "bins": [0.0, 50.0, 100.0],
    "top_percent": 5.0,
    "kinds": {
        "conv": {
            "n_neurons": 40,
            "top_gradient_by_magnitude_rank": {"per_group": {}, "histogram": [3, 5]},
            "top_magnitude_by_gradient_rank": {"per_group": {}, "histogram": [6, 2]},
        }
    },
}


def _stat(mean: float) -> dict[str, float | int]:
    return {"mean": mean, "se": 0.01, "n": 2}


DELETION = {
    "pattern": "S1",
    "deletion_lr": 0.01,
    "deletion_epochs": 2,
    "seeds": [0, 1],
    "per_n": {
        str(n): {
            stage: {"score": _stat(0.1 * n + i)}
            for i, stage in enumerate(("before", "after", "retrained_from_scratch"))
        }
        for n in (1, 3)
    },
}


def _images(html: str) -> list[str]:
    return re.findall(r'<img [^>]*src="data:image/png;base64,', html)


def _html(run_path: Path) -> str:
    write_report(run_path, ["html", "md"])
    return (run_path / "report.html").read_text()


def test_tracing_and_overlap_figures_are_drawn_from_their_tables(tmp_path: Path) -> None:
    run = make_run(tmp_path, extras=False)
    before = len(_images(_html(run.path)))
    run.write_json("artifacts/stage1_tracing.json", TRACING)
    run.write_json("artifacts/stage1_overlap.json", OVERLAP)
    html = _html(run.path)
    assert len(_images(html)) == before + 2
    assert "structured tracing heat map" in html and "overlap histograms" in html
    assert not list(run.artifacts.glob("*.png"))  # the report embeds them; the run dir keeps tables
    md = (run.path / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert any("tracing" in link for link in linked) and all((run.path / link).exists() for link in linked)


def test_an_older_runs_png_is_not_shown_beside_the_drawn_figure(tmp_path: Path) -> None:
    run = make_run(tmp_path, extras=False)
    run.write_json("artifacts/stage1_tracing.json", TRACING)
    run.write_json("artifacts/rare_deletion.json", DELETION)
    drawn = len(_images(_html(run.path)))
    (run.artifacts / "stage1_tracing.png").write_bytes(tiny_png())
    (run.artifacts / "rare_deletion.png").write_bytes(tiny_png())
    assert len(_images(_html(run.path))) == drawn


def test_gradcam_figure_is_drawn_from_the_stage_arrays(tmp_path: Path) -> None:
    run = make_run(tmp_path, extras=False)
    before = len(_images(_html(run.path)))
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    maps = {"ERM": torch.rand(4, 16, 16), "fine-tuned": torch.rand(4, 16, 16)}
    atomic_write_bytes(run.path / GRADCAM_NPZ, gradcam_arrays(images, maps))
    labels = [f"{g}\nERM→landbird, FT→waterbird" for g in GROUPS]
    meta = {"layer": "layer3", "output_index": 0, "split": "test", "models": list(maps), "labels": labels}
    run.write_json(GRADCAM_JSON, {**meta, "arrays": GRADCAM_NPZ})
    html = _html(run.path)
    assert len(_images(html)) == before + 1
    assert "GradCAM: ERM vs fine-tuned" in html and "GradCAM at layer3" in html


def test_unreadable_gradcam_arrays_become_a_note(tmp_path: Path) -> None:
    run = make_run(tmp_path, extras=False)
    run.write_json(GRADCAM_JSON, {"models": ["ERM", "fine-tuned"], "arrays": GRADCAM_NPZ})
    (run.path / GRADCAM_NPZ).write_bytes(b"not an npz")
    html = _html(run.path)
    assert "could not draw the figures of gradcam.json" in html and "gradcam.npz" in html


def test_rare_figures_are_drawn_and_a_malformed_table_becomes_a_note(tmp_path: Path) -> None:
    assert set(FIGURES) >= {"rare_score.json", "rare_deletion.json", "rare_theory.json"}
    run = make_run(tmp_path, extras=False)
    before = len(_images(_html(run.path)))
    run.write_json("artifacts/rare_deletion.json", DELETION)
    html = _html(run.path)
    assert len(_images(html)) == before + 1 and "pattern S1: before and after deletion" in html
    run.write_json("artifacts/rare_deletion.json", {"pattern": "S1", "per_n": {"1": {"before": "?"}}})
    html = _html(run.path)
    assert len(_images(html)) == before
    assert "could not draw the figures of rare_deletion.json" in html
