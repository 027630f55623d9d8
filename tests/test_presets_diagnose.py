"""The Stage II diagnosis preset: recipes (named bundles of keys) expand to one point each per
seed, every recipe changes what it says, and an unknown recipe is a clear error."""

from __future__ import annotations

import tomllib

import pytest

from labconsole.errors import PresetError
from labconsole.presets import expand_sweep, load_preset, preset_from_dict


def test_diagnosis_recipes_expand_and_control_is_continued_erm() -> None:
    preset = load_preset("presets/diagnose-finetune.toml")
    points = expand_sweep(preset)
    recipes = preset.sweep.axes["recipe"]
    assert len(points) == len(recipes) * 3
    by_recipe = {point["recipe"]: p.finetune for point, p in points if point["seed"] == 0}
    paper, control = by_recipe["paper"], by_recipe["continued-erm"]
    assert paper.contrastive_weight == 1 and control.contrastive_weight == 0
    # The control differs from the paper's recipe in the contrastive weight only.
    differing = {k for k in paper.model_dump() if paper.model_dump()[k] != control.model_dump()[k]}
    assert differing == {"contrastive_weight"}
    assert by_recipe["mask-off"].prune_percent == 0
    assert by_recipe["bn-frozen"].batchnorm == "frozen"
    assert by_recipe["continued-erm-lr-floor"].lr < 1e-8 and by_recipe["continued-erm-lr-floor"].contrastive_weight == 0
    assert by_recipe["features-head"].contrast_on == "features"


def test_recipes_survive_the_resolved_config_round_trip() -> None:
    preset = load_preset("presets/diagnose-finetune.toml")
    again = preset_from_dict(tomllib.loads(preset.to_toml()))
    assert again.sweep.recipes == preset.sweep.recipes


def test_an_unknown_recipe_is_a_preset_error() -> None:
    preset = load_preset("presets/diagnose-finetune.toml", ['sweep.axes={recipe=["paper", "nope"]}'])
    with pytest.raises(PresetError, match="nope"):
        expand_sweep(preset)
