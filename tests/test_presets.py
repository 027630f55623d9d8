from __future__ import annotations

from pathlib import Path

import pytest

from labconsole.errors import PresetError
from labconsole.presets import dump_toml, expand_sweep, load_preset, parse_override, preset_from_dict

PRESETS = sorted(Path("presets").rglob("*.toml"))


@pytest.mark.parametrize("path", PRESETS, ids=[str(p) for p in PRESETS])
def test_every_preset_validates(path: Path) -> None:
    preset = load_preset(path)
    assert preset.name
    assert preset.stages
    smoke = preset.smoke()
    assert smoke.smoke_profile and smoke.device == "cpu"


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[erm]\nepochs = 3\nlearning_rate = 0.1\n')
    with pytest.raises(PresetError) as info:
        load_preset(bad)
    message = str(info.value)
    assert str(bad) in message and "erm.learning_rate" in message and "unknown key" in message


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[erm]\nepochs = "ten"\n')
    with pytest.raises(PresetError) as info:
        load_preset(bad)
    assert "erm.epochs" in str(info.value) and "'ten'" in str(info.value)


def test_missing_preset_file_lists_known() -> None:
    with pytest.raises(PresetError, match=r"preset file not found.*quickstart.toml"):
        load_preset("presets/nope.toml")


def test_overrides_are_typed() -> None:
    assert parse_override("erm.epochs=3") == ("erm.epochs", 3)
    assert parse_override('rare.patterns=["S3","R3"]') == ("rare.patterns", ["S3", "R3"])
    assert parse_override("data.dataset=waterbirds") == ("data.dataset", "waterbirds")
    preset = load_preset("presets/quickstart.toml", ["erm.epochs=3", "erm.lr=0.5"])
    assert preset.erm.epochs == 3 and preset.erm.lr == 0.5
    with pytest.raises(PresetError, match="key=value"):
        parse_override("erm.epochs")


def test_resolved_config_round_trips() -> None:
    import tomllib

    preset = load_preset("presets/quickstart.toml")
    again = preset_from_dict(tomllib.loads(preset.to_toml()))
    assert again == preset
    assert "epochs" in dump_toml({"erm": {"epochs": 3}, "sweep": {"axes": {"a.b": [1, 2]}}})


def test_sweep_expands_axes_times_seeds() -> None:
    preset = preset_from_dict({"name": "s", "sweep": {"seeds": [0, 1, 2], "axes": {"erm.lr": [0.1, 0.01]}}})
    points = expand_sweep(preset)
    assert len(points) == 6
    assert {(p["erm.lr"], p["seed"]) for p, _ in points} == {(lr, s) for lr in (0.1, 0.01) for s in (0, 1, 2)}
    assert all(pr.erm.lr == p["erm.lr"] and pr.seed == p["seed"] for p, pr in points)
