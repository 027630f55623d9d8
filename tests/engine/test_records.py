"""The run-directory schema: version-0 files load, newer or misfit files name their version."""

from __future__ import annotations

import json

import pytest

from labconsole.engine.records import (
    SCHEMA_VERSION,
    ErmResult,
    Manifest,
    ModelSection,
    NeuronsSection,
    RunFormatError,
    RunSummary,
    read_record,
    validate_record,
)

V0_SUMMARY = {  # the layout summary.json had before schema_version existed
    "preset": "quickstart",
    "variant": "paper",
    "selection": {"rule": "best val WGA", "epoch": 2, "val_wga": 0.5},
    "splits": {
        "test": {
            "groups": {"landbird-land": 0.9, "landbird-water": 0.25},
            "group_counts": {"landbird-land": 40, "landbird-water": 8},
            "wga": 0.25,
            "worst_group": "landbird-water",
            "mean": 0.8,
            "mean_train_weighted": 0.85,
            "mean_groups": 0.575,
            "wga_quantum": 0.125,
            "n": 48,
        }
    },
    "epochs": 2,
    "erm": {"epochs": 2},
    "rare-theory": {"gammas": [0.0, 1.0]},
    "some-future-stage": {"value": 3},
}


def test_version_0_summary_loads_and_writes_back_the_same_keys(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(V0_SUMMARY))
    summary = read_record(RunSummary, path)
    assert summary.schema_version == 0
    assert summary.splits["test"].wga == 0.25
    assert summary.splits["test"].groups["landbird-water"] == 0.25
    assert summary.selection is not None and summary.selection.epoch == 2
    assert summary.has_stage("erm") and summary.has_stage("rare-theory") and summary.has_stage("some-future-stage")
    written = summary.to_json()
    assert written.pop("schema_version") == 0
    assert written == V0_SUMMARY
    assert summary.numbers()["splits.test.wga"] == 0.25
    assert "schema_version" not in summary.numbers()


def test_newer_version_is_refused_with_its_number(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({**V0_SUMMARY, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(RunFormatError, match=rf"schema version {SCHEMA_VERSION + 1} is newer"):
        read_record(RunSummary, path)


def test_misfit_field_names_file_version_and_field(tmp_path):
    bad = {**V0_SUMMARY, "splits": {"test": {"wga": "high"}}}
    with pytest.raises(
        RunFormatError, match=r"summary\.json: does not fit the schema-version-0 RunSummary.*splits\.test\.wga"
    ):
        validate_record(RunSummary, bad, str(tmp_path / "summary.json"))


def test_manifest_without_version_loads():
    manifest = validate_record(Manifest, {"preset": "fig2", "status": "done", "stages_done": ["model"]}, "m")
    assert (manifest.schema_version, manifest.status, manifest.stages_done) == (0, "done", ["model"])


def test_erm_and_model_sections_fill_the_top_level():
    summary = RunSummary(preset="p")
    ErmResult.model_validate({"splits": V0_SUMMARY["splits"], "selection": V0_SUMMARY["selection"], "epochs": 3}).enter(
        summary, "erm"
    )
    assert summary.splits["test"].wga == 0.25 and summary.epochs == 3 and summary.erm is not None
    given = RunSummary(preset="p")
    ModelSection(source="checkpoint", checkpoint="x.safetensors", splits=summary.splits).enter(given, "model")
    assert given.selection is not None and given.selection.rule == "given checkpoint x.safetensors"
    assert given.model is not None and given.splits == summary.splits


def test_readout_rows_are_named_by_key():
    section = NeuronsSection.model_validate(
        {
            "rows": [
                {"criterion": "gradient", "ranked_group": "landbird-water", "k": 3, "mode": "zero"},
                {"criterion": "magnitude", "k": 1, "mode": "noise", "std": 0.01},
                {"criterion": "gradient", "percent": 0.1, "mode": "reinit", "std": 0.005, "where": "post-bn"},
            ]
        }
    )
    assert list(section.readouts()) == [
        "gradient@landbird-water/top3/zero",
        "magnitude/top1/noise σ=0.01",
        "gradient/top0.1%/reinit σ=0.005/post-bn",
    ]


def test_metric_paths_read_summary_keys_and_named_readouts() -> None:
    summary = RunSummary.model_validate(
        {
            **V0_SUMMARY,
            "neurons": {
                "rows": [
                    {
                        "criterion": "gradient",
                        "ranked_group": "landbird-water",
                        "k": 3,
                        "mode": "zero",
                        "delta_pp": {"train": {"landbird-water": -12.5}},
                        "control_delta_pp": {"train": {"landbird-water": -0.5}},
                    }
                ]
            },
        }
    )
    assert summary.metric('splits.test.groups["landbird-water"]') == 0.25
    readout = 'stage1.readouts["gradient@landbird-water/top3/zero"].train["landbird-water"]'
    assert summary.metric(readout + ".delta_pp") == -12.5
    assert summary.metric(readout + ".control_delta_pp") == -0.5
    assert summary.metric('stage1.readouts["gradient@landbird-water/top1/zero"].train["x"].delta_pp') is None
    assert summary.metric("splits.val.wga") is None
    with pytest.raises(ValueError, match="cannot read"):
        summary.metric("splits..test")


def test_unknown_stage_names_the_known_ones() -> None:
    from labconsole.engine.stages import STAGES, get_stage
    from labconsole.errors import PresetError

    with pytest.raises(PresetError, match=r"unknown stage 'nope' in `stages` \(known: .*erm.*\)"):
        get_stage("nope")
    assert {"erm", "model", "neurons", "tracing", "overlap", "finetune", "dfr", "gradcam"} <= set(STAGES)
