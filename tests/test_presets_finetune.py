"""Stage II presets: they validate, their kick-in epochs exist, and every one runs under --smoke."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from labconsole.presets import PRESETS_DIR, expand_sweep, load_preset

FINETUNE_PRESETS = [
    "fig6",
    "table12",
    "table4",
    "table5",
    "table6",
    "table7",
    "table8",
    "table9",
    "table10",
    "baseline-balanced",
    "baseline-dfr",
    "fig10",
    "official-code/finetune",
    "official-code/erm",
]


@pytest.mark.parametrize("name", FINETUNE_PRESETS)
def test_preset_validates_and_names_what_it_reproduces(name: str) -> None:
    preset = load_preset(PRESETS_DIR / f"{name}.toml")
    assert preset.reproduces and preset.description
    assert preset.data.dataset == "waterbirds" or (name == "table12" and preset.data.dataset == "celeba")
    for _, point in expand_sweep(preset):
        trains_erm = "erm" in point.stages or ("model" in point.stages and not point.model.checkpoint)
        if "finetune" in point.stages and trains_erm and point.finetune.kick_in_epoch:
            assert point.finetune.kick_in_epoch in point.erm.keep_epochs, name
            assert point.finetune.kick_in_epoch <= point.erm.epochs


def test_official_code_presets_name_their_variant() -> None:
    for name in ("official-code/finetune", "official-code/erm"):
        assert load_preset(PRESETS_DIR / f"{name}.toml").variant == "official-code"
    options = load_preset(PRESETS_DIR / "official-code/finetune.toml").finetune.variant_options()
    assert options["mask"].startswith("authors'") and options["contrastive"].startswith("authors'")
    assert options["head"].startswith("authors'") and options["kick_in"] == "from the loaded checkpoint"


def test_ablation_axes_are_the_papers() -> None:
    axes = {n: load_preset(PRESETS_DIR / f"{n}.toml").sweep.axes for n in ("table4", "table5", "table8", "table9")}
    assert axes["table5"]["finetune.kick_in_epoch"] == [30, 40, 50, 60]
    assert axes["table8"]["finetune.supervised_weight"] == [0.01, 0.2, 1.0, 10.0]
    assert axes["table9"]["finetune.prune_percent"] == [0.01, 0.1, 1.0, 10.0]
    assert set(axes["table4"]["finetune.supervised"]) == {"mse", "ce"}


@pytest.mark.slow
@pytest.mark.parametrize("name", FINETUNE_PRESETS)
def test_preset_runs_under_smoke(name: str, tmp_path: Path) -> None:
    from labconsole.engine.api import run_job

    preset = load_preset(PRESETS_DIR / f"{name}.toml", smoke=True)
    for point, point_preset in expand_sweep(preset):
        run = run_job(point_preset, emit=lambda e: None, runs_root=tmp_path)
        assert run.is_done, (name, point)
        summary = run.summary()
        for stage in point_preset.stages:
            assert stage in summary, (name, stage)
        if "finetune" in point_preset.stages:
            assert summary["finetune"]["variant"] == point_preset.variant
            assert summary["finetune"]["wga_after"]["test"] is not None
        if "gradcam" in point_preset.stages:
            # The stage writes the maps; the run's report draws the figure from them.
            assert all((run.path / a).exists() for a in summary["gradcam"]["artifacts"])
            assert not list(run.artifacts.glob("*.png"))


def test_bad_finetune_value_exits_with_code_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "labconsole.cli",
            "run",
            "presets/quickstart.toml",
            "--smoke",
            "--set",
            "finetune.prune_percent=100",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "prune_percent" in result.stderr and "Traceback" not in result.stderr
