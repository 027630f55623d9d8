"""Every rare-correlation stage runs end-to-end on its preset's smoke settings (SPEC §6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stage_context import recording_context

from labconsole.engine.context import StageContext
from labconsole.engine.records import (
    RareDeletionArtifact,
    RareMembershipArtifact,
    RareMitigationsArtifact,
    RareScoreArtifact,
    RareSensitivityArtifact,
    RareTheoryArtifact,
    RareWeightsArtifact,
    Record,
    StageSection,
    validate_record,
)
from labconsole.engine.stages import get_stage, stage_function
from labconsole.errors import UserError
from labconsole.presets import PRESETS_DIR, load_preset
from labconsole.report.figures_rare import figures_for

RARE_PRESETS = sorted((PRESETS_DIR / "rare").glob("*.toml"))
ARTIFACT_RECORDS = {
    "rare_score.json": RareScoreArtifact,
    "rare_weights.json": RareWeightsArtifact,
    "rare_sensitivity.json": RareSensitivityArtifact,
    "rare_membership.json": RareMembershipArtifact,
    "rare_mitigations.json": RareMitigationsArtifact,
    "rare_deletion.json": RareDeletionArtifact,
    "rare_theory.json": RareTheoryArtifact,
}


def undeclared_keys(node: object, where: str = "") -> list[str]:
    """Keys of a record (and the records inside it) that no field declares."""
    if isinstance(node, Record):
        found = [f"{where}.{k}" for k in node.model_extra or {}]
        for name in type(node).model_fields:
            found += undeclared_keys(getattr(node, name), f"{where}.{name}")
        return found
    if isinstance(node, dict):
        return [k for key, value in node.items() for k in undeclared_keys(value, f"{where}[{key}]")]
    if isinstance(node, list):
        return [k for i, value in enumerate(node) for k in undeclared_keys(value, f"{where}[{i}]")]
    return []


make_context = recording_context


def smoke_preset(path: Path, *overrides: str):
    preset = load_preset(path, overrides, smoke=True)
    # The lab's figures are about MLPs (pixel importance needs a first Linear layer).
    return preset.model_copy(update={"model": preset.model.model_copy(update={"backbone": "mlp"})})


def run_stages(ctx: StageContext) -> dict:
    out = {}
    for name in ctx.preset.stages:
        ctx.stage = name
        out[name] = stage_function(name)(ctx)
        assert isinstance(out[name], get_stage(name).record)  # the section summary.json stores
        json.dumps(out[name].to_json())  # and it writes as plain JSON
    return out


@pytest.mark.parametrize("path", RARE_PRESETS, ids=[p.stem for p in RARE_PRESETS])
def test_preset_runs_in_smoke_profile(tmp_path: Path, path: Path) -> None:
    preset = smoke_preset(path)
    assert preset.reproduces.startswith("Paper B")
    assert preset.data.dataset == "digits"
    ctx = make_context(tmp_path, preset)
    summary = run_stages(ctx)
    artifacts = sorted(p.name for p in ctx.run.artifacts.iterdir())
    assert any(name.endswith(".json") for name in artifacts)
    # The engine writes tables only; the report draws every figure from them.
    assert not any(name.endswith(".png") for name in artifacts)
    figures = [
        f
        for name in artifacts
        if name.endswith(".json")
        for f in figures_for(name, json.loads((ctx.run.artifacts / name).read_text()))
    ]
    assert figures and all(f.png.startswith(b"\x89PNG") for f in figures)
    # Each table is written through its record: versioned, every key a declared field.
    for name in (n for n in artifacts if n.endswith(".json")):
        data = json.loads((ctx.run.artifacts / name).read_text())
        assert data["schema_version"] == 1, name
        assert undeclared_keys(validate_record(ARTIFACT_RECORDS[name], data, name)) == [], name
    kinds = {type(e).__name__ for e in ctx.state["events"]}
    assert "ArtifactWritten" in kinds
    assert all(isinstance(v, StageSection) for v in summary.values())


def test_score_table_has_mean_se_and_p_values(tmp_path: Path) -> None:
    preset = smoke_preset(PRESETS_DIR / "rare" / "score-vs-n.toml", 'rare.patterns=["R3"]', "rare.n_spurious=[0,3]")
    ctx = make_context(tmp_path, preset)
    summary = run_stages(ctx)["rare-score"]
    cell = summary.per_pattern["R3"]["3"]
    assert cell.score.n == preset.rare.num_seeds == 2
    assert cell.score.mean is not None and 0.0 <= cell.score.mean <= 1.0
    assert cell.score.se is not None and cell.score.se >= 0.0
    assert cell.p_value is None or 0.0 <= cell.p_value <= 1.0
    assert summary.per_pattern["R3"]["0"].p_value is None
    table = json.loads((ctx.run.artifacts / "rare_score.json").read_text())
    assert len(table["runs"]) == 2 * 2
    assert any(type(e).__name__ == "Progress" for e in ctx.state["events"])


def test_membership_non_members_are_held_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import labconsole.engine.rare.training as training

    seen: list[set[bytes]] = []
    original = training.predict_proba

    def recording(model, x, batch_size=2048):
        seen.append({row.numpy().tobytes() for row in x.cpu()})
        return original(model, x, batch_size)

    monkeypatch.setattr(training, "predict_proba", recording)
    preset = smoke_preset(PRESETS_DIR / "rare" / "membership.toml", "rare.membership_n=[3]")
    run_stages(make_context(tmp_path, preset))
    shadow_in, shadow_out, target_in, target_out = seen[:4]
    assert not shadow_in & shadow_out
    assert not target_in & target_out  # non-member outputs never come from training images
    assert not target_out & shadow_in and not target_in & shadow_in


def test_weights_stage_skips_models_without_an_input_linear(tmp_path: Path) -> None:
    preset = load_preset(PRESETS_DIR / "rare" / "weights.toml", ["rare.weights_n=[0]", "rare.epochs=1"], smoke=True)
    preset = preset.model_copy(update={"model": preset.model.model_copy(update={"backbone": "small_cnn"})})
    summary = run_stages(make_context(tmp_path, preset))["rare-weights"]
    assert summary.skipped is not None and "small_cnn" in summary.skipped
    assert summary.to_json() == {"skipped": summary.skipped}  # nothing else is written


def test_too_many_spurious_examples_is_a_user_error(tmp_path: Path) -> None:
    preset = smoke_preset(PRESETS_DIR / "rare" / "membership.toml", "rare.membership_n=[500]")
    with pytest.raises(UserError, match="target-train quarter"):
        run_stages(make_context(tmp_path, preset))
    preset = smoke_preset(PRESETS_DIR / "rare" / "score-vs-n.toml", "rare.target_class=12")
    with pytest.raises(UserError, match="target_class"):
        run_stages(make_context(tmp_path, preset))
