"""What a user gives is read as given or refused by name: binary presets, --smoke next to typed
values, a dataset folder checked as the other dataset."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "engine"))
from conftest_data import make_celeba_metadata_csv, make_waterbirds_wilds

from labconsole.engine.data.check import check_dataset
from labconsole.errors import PresetError
from labconsole.presets import load_preset


def test_binary_preset_is_refused_naming_the_file(tmp_path: Path) -> None:
    preset = tmp_path / "photo.toml"
    preset.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary")
    with pytest.raises(PresetError, match=r"photo\.toml.*not a text file"):
        load_preset(preset)


def test_smoke_keeps_the_device_and_values_the_user_typed() -> None:
    preset = load_preset("quickstart", ["device=cuda", "erm.epochs=5", "finetune.lr=0.05"], smoke=True)
    assert preset.smoke_profile
    assert preset.device == "cuda"
    assert preset.erm.epochs == 5
    assert preset.finetune.lr == 0.05
    untouched = load_preset("quickstart", smoke=True)
    assert untouched.erm.epochs <= 2 and untouched.device == "cpu"  # smoke still shrinks the rest


def test_smoke_keeps_a_device_the_preset_names(tmp_path: Path) -> None:
    preset = tmp_path / "gpu.toml"
    preset.write_text('name = "gpu"\ndevice = "cuda"\n')
    assert load_preset(preset, smoke=True).device == "cuda"


def test_smoke_with_a_data_root_keeps_that_dataset_and_caps_its_size(tmp_path: Path) -> None:
    preset = load_preset("erm-waterbirds", smoke=True, data_root=str(tmp_path))
    assert preset.data.dataset == "waterbirds"
    assert preset.data.root == str(tmp_path)
    assert 0 < preset.data.max_per_split <= 256
    assert preset.model.backbone == "cifar_resnet8"  # the model is still the smoke one


def test_waterbirds_folder_checked_as_celeba_names_the_mismatch(tmp_path: Path) -> None:
    folder = make_waterbirds_wilds(tmp_path)
    report = check_dataset(folder, "celeba")
    assert not report["ok"]
    assert any("looks like waterbirds, not celeba" in p for p in report["problems"]), report["problems"]
    assert "--dataset waterbirds" in report["verdict"]
    # The same folder checked as what it is passes.
    assert check_dataset(folder, "waterbirds")["ok"]


def test_waterbirds_images_in_a_neutral_folder_are_still_recognised(tmp_path: Path) -> None:
    folder = make_waterbirds_wilds(tmp_path)
    neutral = folder.rename(tmp_path / "data")
    report = check_dataset(neutral, "celeba")
    assert any("looks like waterbirds" in p and "sub-folders" in p for p in report["problems"]), report["problems"]


def test_celeba_metadata_csv_is_not_flagged(tmp_path: Path) -> None:
    folder = make_celeba_metadata_csv(tmp_path)
    report = check_dataset(folder, "celeba")
    assert not any("looks like" in p for p in report["problems"]), report["problems"]


def test_every_preset_resumes_from_its_own_config_toml() -> None:
    """The console resumes a run from its config.toml: that must never read as another preset."""
    import tomllib

    from labconsole.engine.resume import config_differences
    from labconsole.presets import PRESETS_DIR, preset_from_dict

    for path in sorted(PRESETS_DIR.rglob("*.toml")):
        for smoke in (False, True):
            written = load_preset(path, smoke=smoke).to_toml()
            reread = preset_from_dict(tomllib.loads(written)).to_toml()
            assert config_differences(written, reread) == [], (path.name, smoke)
    changed = load_preset("quickstart", ["erm.lr=0.05"]).to_toml()
    assert [key for key, _, _ in config_differences(load_preset("quickstart").to_toml(), changed)] == ["erm.lr"]
