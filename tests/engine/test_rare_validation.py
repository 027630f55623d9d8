"""The rare lab runs what the preset says or refuses it: no clipped counts, no substituted values,
no crash on the degenerate theory point (Paper B presets, smoke sizes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stage_context import recording_context

from labconsole.engine.stages import stage_function
from labconsole.errors import UserError
from labconsole.presets import PRESETS_DIR, load_preset


def smoke_preset(name: str, *overrides: str):
    return load_preset(PRESETS_DIR / "rare" / name, overrides, smoke=True)


def run_stages(tmp_path: Path, preset) -> tuple[dict, object]:
    ctx = recording_context(tmp_path, preset)
    out = {}
    for name in preset.stages:
        ctx.stage = name
        out[name] = stage_function(name)(ctx)
    return out, ctx


@pytest.mark.parametrize(
    "preset_name, override, message",
    [
        ("membership.toml", "rare.membership_n=[0,100]", "target-train quarter"),
        ("mitigations.toml", "rare.mitigation_n=1000", "rare.mitigation_n"),
        ("score-vs-n.toml", "rare.n_spurious=[0,1000]", "rare.n_spurious"),
    ],
)
def test_smoke_validates_counts_as_given(tmp_path: Path, preset_name: str, override: str, message: str) -> None:
    # Each fails without --smoke; --smoke must not clip it into a run that passes.
    preset = smoke_preset(preset_name, override)
    with pytest.raises(UserError, match=message):
        run_stages(tmp_path, preset)
    with pytest.raises(UserError, match=message):  # the same message without --smoke
        preset = load_preset(PRESETS_DIR / "rare" / preset_name, [override])
        run_stages(tmp_path / "full", preset.model_copy(update={"rare": preset.rare.model_copy(update={"epochs": 1})}))


def test_theory_with_noise_free_spurious_direction_runs(tmp_path: Path) -> None:
    preset = smoke_preset("theory.toml", "rare.theory.sigma_sp=0")
    out, ctx = run_stages(tmp_path, preset)
    summary = out["rare-theory"]
    difference = summary.exact_at_gamma["prediction_difference"]
    assert difference is not None and difference > 0
    curve = json.loads((ctx.run.artifacts / "rare_theory.json").read_text())["lam_curves"]["0.0"]
    assert curve["prediction_difference"][0] == 0.0  # γ = 0, λ = 0: no spurious example, no weight


def test_deletion_reference_is_trained_without_the_deleted_rows(tmp_path: Path, monkeypatch) -> None:
    import labconsole.engine.rare.common as common
    import labconsole.engine.rare.deletion as deletion

    sizes: list[int] = []
    original = common.train_classifier

    def recording(model, x, y, recipe, **kwargs):
        sizes.append(len(y))
        return original(model, x, y, recipe, **kwargs)

    monkeypatch.setattr(common, "train_classifier", recording)
    monkeypatch.setattr(deletion, "train_classifier", recording)
    preset = smoke_preset("deletion.toml", "rare.deletion_n=[5]")
    _, ctx = run_stages(tmp_path, preset)
    full = len(ctx.state["rare_data"].y_train)
    assert sizes == [full, full - 5, full - 5]  # trained, deleted, reference
    table = json.loads((ctx.run.artifacts / "rare_deletion.json").read_text())
    assert table["deletion_lr"] == preset.rare.deletion_lr and "minus the deleted rows" in table["reference"]


def test_membership_reports_both_rates_auc_and_patterned_non_members(tmp_path: Path) -> None:
    preset = smoke_preset("membership.toml", "rare.membership_n=[0,3]")
    out, ctx = run_stages(tmp_path, preset)
    runs = json.loads((ctx.run.artifacts / "rare_membership.json").read_text())["runs"]
    for row in runs:
        assert row["balanced_accuracy"] == pytest.approx((row["member_accuracy"] + row["non_member_accuracy"]) / 2)
        assert 0.0 <= row["auc"] <= 1.0
        assert (row["patterned_non_member_accuracy"] is None) == (row["n"] == 0)
    assert out["rare-membership"].patterned_non_member_accuracy["3"].n == 1
