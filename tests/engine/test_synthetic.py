from __future__ import annotations

import torch

from labconsole.config.data import DataConfig, SyntheticConfig
from labconsole.engine.data.synthetic import build_synthetic_waterbirds


def small_cfg(seed: int = 0, **kw) -> DataConfig:
    syn = SyntheticConfig(train_counts=(60, 8, 4, 20), val_per_group=(5, 5, 5, 5), test_per_group=(6, 6, 6, 6), **kw)
    return DataConfig(seed=seed, synthetic=syn)


def test_default_counts_follow_waterbirds() -> None:
    bundle = build_synthetic_waterbirds(DataConfig())
    assert bundle.split("train").group_counts(4) == [3498, 184, 56, 1057]
    assert len(bundle.split("train")) == 4795
    val = bundle.split("val").group_counts(4)
    assert val[0] == val[1] and val[2] == val[3]  # balanced within each class
    assert bundle.split("train").images.shape[1:] == (3, 32, 32)
    assert bundle.groups.group_names == ("landbird-land", "landbird-water", "waterbird-land", "waterbird-water")


def test_deterministic_from_seed_and_seed_matters() -> None:
    a, b, c = (build_synthetic_waterbirds(small_cfg(s)) for s in (0, 0, 1))
    assert torch.equal(a.split("train").images, b.split("train").images)
    assert not torch.equal(a.split("train").images, c.split("train").images)


def test_groups_match_labels_and_place() -> None:
    split = build_synthetic_waterbirds(small_cfg()).split("train")
    assert torch.equal(split.g, 2 * split.y + split.a)


def test_background_families_differ_by_place() -> None:
    for style in ("photos", "stripes", "noise"):
        split = build_synthetic_waterbirds(small_cfg(background=style)).split("test")
        x = split.images.float()
        mean_land = x[split.a == 0].mean(dim=(0, 2, 3))
        mean_water = x[split.a == 1].mean(dim=(0, 2, 3))
        assert (mean_land - mean_water).abs().max() > 5, style


def test_image_size_is_configurable() -> None:
    cfg = small_cfg().model_copy(update={"image_size": 48})
    assert build_synthetic_waterbirds(cfg).split("val").images.shape[-1] == 48
