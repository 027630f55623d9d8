"""Stage I pipeline stages on the embedded smoke data: model, neurons, tracing, overlap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from stage_context import recording_context

from labconsole.engine.context import StageContext
from labconsole.engine.models.checkpoint import save_checkpoint
from labconsole.engine.records import StageSection
from labconsole.engine.stages import stage_function
from labconsole.errors import PresetError
from labconsole.presets import load_preset
from labconsole.report import figures_tracing

context = recording_context


def run_stages(ctx: StageContext, stages) -> dict:
    out = {}
    for name in stages:
        ctx.stage = name
        produced = stage_function(name)(ctx)
        out[name] = produced.to_json() if isinstance(produced, StageSection) else produced
        json.dumps(out[name])  # summaries are plain JSON
    return out


def smoke(*overrides: str):
    return load_preset("quickstart", overrides, smoke=True)


def test_neurons_stage_needs_a_trained_model(tmp_path: Path) -> None:
    ctx = context(tmp_path, smoke())
    with pytest.raises(PresetError, match="needs a trained model"):
        run_stages(ctx, ["neurons"])


@pytest.mark.slow
def test_model_neurons_tracing_overlap_end_to_end(tmp_path: Path) -> None:
    preset = smoke(
        'neurons.criteria=["gradient", "magnitude"]',
        "neurons.groups=[]",
        "neurons.top_k=[2]",
        'neurons.modes=["zero", "noise"]',
        "neurons.stds=[0.1]",
        "neurons.random_k=[2]",
        'neurons.where=["weight", "post-bn"]',
        "neurons.overlap_top_percent=5.0",
    )
    ctx = context(tmp_path, preset)
    out = run_stages(ctx, ["model", "neurons", "tracing", "overlap"])
    assert out["model"]["source"] == "erm"

    summary = out["neurons"]
    groups = list(summary["baseline"]["train"])
    # (4 gradient groups + 1 magnitude + 1 random) × (zero + noise) × 2 where.
    assert len(summary["rows"]) == 6 * 2 * 2
    row = summary["rows"][0]
    assert set(row["delta_pp"]) == {"train", "test"} and list(row["delta_pp"]["train"]) == groups
    assert set(row["control_delta_pp"]) == {"train", "test"}
    artifact = json.loads((ctx.run.path / summary["artifact"]).read_text())
    assert len(artifact["rows"]) == len(summary["rows"])
    assert artifact["minority_groups"] == ["waterbird-land", "landbird-water"]
    kinds = [e.kind for e in ctx.state["events"]]
    assert kinds.count("RankingReady") == 5 and kinds.count("ReadoutReady") == len(summary["rows"])

    tracing = out["tracing"]
    assert len(tracing["layers"]) == 9
    for criterion in ("gradient", "magnitude", "control"):
        matrix = tracing["matrices"][criterion]["train"]
        assert len(matrix) == 9 and all(len(r) == 4 for r in matrix)
    # The engine writes the table only; the report draws the heat map from it.
    assert tracing["artifacts"] == ["artifacts/stage1_tracing.json"]
    assert not list(ctx.run.artifacts.glob("*.png"))
    traced = json.loads((ctx.run.path / "artifacts/stage1_tracing.json").read_text())
    assert len(figures_tracing.tracing_heatmap(traced)) > 1000

    overlap = out["overlap"]["kinds"]["conv"]
    n = overlap["n_neurons"]
    per_group = max(1, -(-n * 5 // 100))
    assert sum(overlap["top_gradient_by_magnitude_hist"]) == 4 * per_group
    overlap_table = json.loads((ctx.run.path / "artifacts/stage1_overlap.json").read_text())
    assert figures_tracing.overlap_histograms(overlap_table).startswith(b"\x89PNG")


def test_model_stage_loads_a_given_checkpoint(tmp_path: Path) -> None:
    from labconsole.engine.models.factory import create_model

    torch.manual_seed(0)
    model = create_model("cifar_resnet8", 2, width=8)
    path = save_checkpoint(
        tmp_path / "given",
        model,
        {"backbone": "cifar_resnet8", "num_classes": 2, "width": 8, "dataset": "synthetic-waterbirds"},
    )
    preset = smoke(f"model.checkpoint={path}", "neurons.top_k=[1]", "neurons.control_draws=0")
    preset = preset.model_copy(update={"model": preset.model.model_copy(update={"checkpoint": str(path)})})
    ctx = context(tmp_path, preset)
    out = run_stages(ctx, ["model", "neurons"])
    assert out["model"]["source"] == "checkpoint"
    loaded = ctx.state["model"]
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    assert out["neurons"]["rows"][0]["control_delta_pp"] == {}


def test_unknown_group_in_config_is_a_user_error(tmp_path: Path) -> None:
    from labconsole.errors import UserError

    ctx = context(tmp_path, smoke('neurons.groups=["penguin-ice"]'))
    with pytest.raises(UserError, match="unknown group 'penguin-ice'"):
        run_stages(ctx, ["model", "neurons"])


def test_the_printed_table_names_the_control_it_shows() -> None:
    from labconsole.engine.records import NeuronsRow, NeuronsSection
    from labconsole.engine.stage1.stages import format_table

    groups = {"landbird-water": -40.0, "waterbird-land": 1.0}
    row = NeuronsRow(
        label="gradient on landbird-water top-3",
        neurons=[("conv1", 1), ("conv1", 2), ("layer1.0.conv1", 3)],
        delta_pp={"train": groups},
        control_delta_pp={"train": {"landbird-water": -10.0, "waterbird-land": -2.0}},
        control_spread_pp={"train": {"landbird-water": 5.0, "waterbird-land": 1.0}},
        control_kind="layer-matched",
        control_draws=20,
    )
    table = format_table(NeuronsSection(baseline={"train": {g: 0.9 for g in groups}}, rows=[row]))
    assert "control: 20 draws of 3, layer-matched" in table  # not "random neurons": it was matched
