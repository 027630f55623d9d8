"""Stage I presets (Paper A figures/tables): they validate, describe real-data runs, carry the
paper's numbers, and every one runs end-to-end in the smoke profile."""

from __future__ import annotations

import json

import pytest
import torch

from labconsole.engine.api import run_job
from labconsole.presets import PRESETS_DIR, load_preset

STAGE1 = ["fig2", "fig3", "fig4", "fig5", "fig7", "table3", "table11", "table13", "table14", "threshold"]


@pytest.mark.parametrize("name", STAGE1)
def test_preset_targets_real_data_and_a_checkpoint(name: str) -> None:
    preset = load_preset(PRESETS_DIR / f"{name}.toml")
    assert preset.data.dataset == ("celeba" if name == "table11" else "waterbirds")
    assert preset.model.backbone == "resnet50" and preset.model.checkpoint == ""
    assert preset.stages[0] == "model" and preset.reproduces.startswith("Paper A")
    assert preset.reference, "published numbers belong in [reference]"
    given = load_preset(PRESETS_DIR / f"{name}.toml", ["model.checkpoint=runs/x"])
    assert given.model.checkpoint == "runs/x"


def test_reference_numbers_match_the_paper() -> None:
    table3 = load_preset(PRESETS_DIR / "table3.toml").reference
    label = next(k for k in table3 if "Table 3" in k)
    assert table3[label]["k=3"]["waterbird-land"] == 10.72
    assert table3[label]["k=10"]["landbird-water"] == 20.01


@pytest.mark.slow
@pytest.mark.parametrize("name", [*STAGE1, "quickstart"])
def test_preset_runs_in_smoke_profile(tmp_path, name: str) -> None:
    torch.set_num_threads(1)
    preset = load_preset(PRESETS_DIR / f"{name}.toml", smoke=True)
    events: list = []
    run = run_job(preset, emit=events.append, runs_root=tmp_path)
    assert run.status() == "done"
    summary = run.summary()
    last = preset.stages[-1]
    assert last in summary
    json.dumps(summary)
    if last == "neurons":
        assert summary["neurons"]["rows"] and (run.path / "artifacts/stage1_readouts.json").exists()
        assert any(e.kind == "ReadoutReady" for e in events)
