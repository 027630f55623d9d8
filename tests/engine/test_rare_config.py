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
