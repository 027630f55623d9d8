"""The [rare] preset section: validation and the smoke profile."""

from __future__ import annotations

import pytest

from labconsole.config.rare import RareConfig
from labconsole.errors import PresetError
from labconsole.presets import PRESETS_DIR, load_preset


def test_defaults_follow_paper_b() -> None:
    cfg = RareConfig()
    assert cfg.optimizer == "adam" and cfg.lr == 0.01 and cfg.batch_size == 128 and cfg.lr_gamma == 0.1
    assert cfg.epsilon == 0.1 and cfg.num_seeds == 5 and cfg.n_spurious == (0, 1, 3, 5, 10, 20, 100)


def test_smoke_shrinks() -> None:
    smoke = RareConfig().smoke()
    assert smoke.epochs <= 3 and smoke.num_seeds <= 2 and len(smoke.n_spurious) <= 2 and len(smoke.patterns) <= 2
    assert all(m < smoke.epochs for m in smoke.lr_milestones)


@pytest.mark.parametrize(
    "override, key",
    [
        ("rare.epsilon=1.5", "rare.epsilon"),
        ('rare.patterns=["S9"]', "rare.patterns"),
        ("rare.n_spurious=[-1]", "rare.n_spurious"),
        ("rare.lr_milestones=[5, 3]", "rare"),
        ("rare.colour=1", "rare.colour"),
    ],
)
def test_bad_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(PresetError, match=key.replace(".", r"\.")):
        load_preset(PRESETS_DIR / "rare" / "score-vs-n.toml", [override])


def test_score_override_from_the_brief_parses() -> None:
    preset = load_preset(PRESETS_DIR / "rare" / "score-vs-n.toml", ['rare.patterns=["S3","R3"]'])
    assert preset.rare.patterns == ("S3", "R3") and preset.stages == ("rare-score",)


def test_paper_recipe_is_the_default() -> None:
    cfg = RareConfig()
    assert cfg.epochs == 70 and cfg.lr_milestones == (40, 50, 60)
    assert cfg.deletion_epochs == cfg.epochs  # Paper B retrains as long as it trained
    for path in sorted((PRESETS_DIR / "rare").glob("*.toml")):
        preset = load_preset(path)
        assert (preset.rare.epochs, preset.rare.lr_milestones) == (70, (40, 50, 60)), path.name


def test_deletion_count_zero_is_refused_not_replaced() -> None:
    with pytest.raises(PresetError, match=r"rare\.deletion_n"):
        load_preset(PRESETS_DIR / "rare" / "deletion.toml", ["rare.deletion_n=[0]"])
    with pytest.raises(PresetError, match=r"rare\.deletion_n"):
        load_preset(PRESETS_DIR / "rare" / "deletion.toml", ["rare.deletion_n=[0, 3]"], smoke=True)


def test_smoke_keeps_the_extreme_counts_as_given() -> None:
    cfg = RareConfig(n_spurious=(0, 1, 3, 1000), membership_n=(0, 100), mitigation_n=1000, deletion_n=(1, 500))
    smoke = cfg.smoke()
    assert smoke.n_spurious == (0, 1000)
    assert smoke.membership_n == (0, 100)
    assert smoke.mitigation_n == 1000
    assert smoke.deletion_n == (500,)


def test_score_presets_offer_both_target_classes_of_paper_b() -> None:
    from labconsole.presets import expand_sweep

    targets = set()
    for name in ("score-vs-n.toml", "score-targets.toml", "spurious-accuracy.toml"):
        preset = load_preset(PRESETS_DIR / "rare" / name)
        targets |= {p.rare.target_class for _, p in expand_sweep(preset)}
    assert targets == {0, 1}
