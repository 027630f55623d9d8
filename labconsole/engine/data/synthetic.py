"""``synthetic-waterbirds``: the embedded default dataset, built in about a second, no download.

The core object is a real handwritten digit (sklearn's 1,797 ``load_digits``): digits 0–4 are
class 0 ("landbird"), 5–9 class 1 ("waterbird"). It is pasted as an opaque tile (white strokes
on black) onto a background from one of two families, the spurious "place": crops of the two
photos in ``load_sample_images`` (land = the temple, water = the flower) by default.

Why it is built this way: the phenomenon under study needs a model that *can* read the core
feature but finds the background easier. Strokes alpha-blended onto a photo vanish and the
model then ignores the digit entirely; an opaque tile keeps the digit readable. Train, val and
test draw digits from disjoint pools, and every minority training example has its own digit
image used nowhere else, so fitting a minority example means memorizing that one image.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from labconsole.config.data import DataConfig
from labconsole.engine.data.groups import DatasetBundle, GroupInfo, SplitData
from labconsole.errors import DataError

SYNTHETIC_GROUPS = GroupInfo(class_names=("landbird", "waterbird"), attr_names=("land", "water"))

# Fractions of each class's digit images reserved for train / val / test (disjoint pools).
POOL_FRACTIONS = (0.55, 0.15, 0.30)
BACKGROUND_BANK = 512  # background crops per place; examples sample from the bank


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images.astype(np.float32) / 16.0, data.target.astype(np.int64)


@lru_cache(maxsize=1)
def _photos() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images  # uint8 [H, W, 3]

    def as_tensor(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255.0

    return as_tensor(china), as_tensor(flower)


def _photo_bank(place: int, size: int, count: int, rng: np.random.Generator) -> torch.Tensor:
    photo = _photos()[place]
    _, h, w = photo.shape
    crops = []
    for _ in range(count):
        side = int(rng.uniform(0.25, 0.6) * min(h, w))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = photo[:, top : top + side, left : left + side].unsqueeze(0)
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
        crops.append(torch.flip(crop, dims=[2]) if rng.random() < 0.5 else crop)
    return torch.stack(crops).clamp(0, 1)


def _pattern_bank(place: int, size: int, count: int, rng: np.random.Generator, style: str) -> torch.Tensor:
    """Non-photo background families: oriented stripes or tinted noise, one family per place."""
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    tint = torch.tensor([0.55, 0.45, 0.25] if place == 0 else [0.2, 0.4, 0.7]).view(3, 1, 1)
    out = []
    for _ in range(count):
        if style == "stripes":
            freq = rng.uniform(0.3, 0.8)
            phase = rng.uniform(0, 2 * np.pi)
            coord = yy if place == 0 else xx
            wave = 0.5 + 0.35 * torch.sin(freq * coord + phase)
        else:
            wave = torch.from_numpy(rng.uniform(0.2, 0.8, size=(size, size)).astype(np.float32))
        out.append((tint * 1.2 * wave.unsqueeze(0)).clamp(0, 1))
    return torch.stack(out)


def _digit_pools(class_digits: tuple[tuple[int, ...], ...], rng: np.random.Generator) -> list[list[np.ndarray]]:
    """For each class, three disjoint index arrays into load_digits: train / val / test."""
    _, target = _digits()
    pools = []
    for digits in class_digits:
        idx = np.flatnonzero(np.isin(target, digits))
        rng.shuffle(idx)
        n_train = int(POOL_FRACTIONS[0] * len(idx))
        n_val = int(POOL_FRACTIONS[1] * len(idx))
        pools.append([idx[:n_train], idx[n_train : n_train + n_val], idx[n_train + n_val :]])
    return pools


def _compose(
    digit_idx: np.ndarray, backgrounds: torch.Tensor, size: int, tile: int, jitter: bool, rng: np.random.Generator
) -> torch.Tensor:
    images, _ = _digits()
    digits = torch.from_numpy(images[digit_idx]).unsqueeze(1)  # [N, 1, 8, 8]
    tiles = F.interpolate(digits, size=(tile, tile), mode="bilinear", align_corners=False).clamp(0, 1)
    out = backgrounds.clone()
    n = len(digit_idx)
    if jitter:
        tops = rng.integers(0, size - tile + 1, size=n)
        lefts = rng.integers(0, size - tile + 1, size=n)
    else:
        tops = lefts = np.full(n, (size - tile) // 2)
    for i in range(n):  # opaque tile: replaces the background where it sits
        out[i, :, tops[i] : tops[i] + tile, lefts[i] : lefts[i] + tile] = tiles[i]
    return (out * 255).round().to(torch.uint8)


def build_synthetic_waterbirds(cfg: DataConfig, between_chunks: Callable[[], None] | None = None) -> DatasetBundle:
    """``cfg`` is a DataConfig; ``cfg.synthetic`` holds the knobs (see config/data.py).
    ``between_chunks`` runs after each background bank and each split (a cancel raises there)."""
    step = between_chunks or (lambda: None)
    syn = cfg.synthetic
    size = cfg.image_size
    tile = max(6, round(syn.tile_fraction * size))
    rng = np.random.default_rng(cfg.seed)
    classes = (tuple(syn.class0_digits), tuple(syn.class1_digits))
    if set(classes[0]) & set(classes[1]):
        raise DataError("data.synthetic: class0_digits and class1_digits overlap")
    pools = _digit_pools(classes, rng)

    def bank(place: int) -> torch.Tensor:
        if syn.background == "photos":
            return _photo_bank(place, size, BACKGROUND_BANK, rng)
        return _pattern_bank(place, size, BACKGROUND_BANK, rng, syn.background)

    land = bank(0)
    step()
    banks = (land, bank(1))
    step()
    splits = {}
    for split_index, (split_name, counts) in enumerate(
        (("train", syn.train_counts), ("val", syn.val_per_group), ("test", syn.test_per_group))
    ):
        ys, as_, digit_ids = [], [], []
        for y in (0, 1):
            pool = pools[y][split_index].copy()
            rng.shuffle(pool)
            n_major, n_minor = (counts[2 * y + y], counts[2 * y + (1 - y)])  # majority place == class
            minority_place = 1 - y
            if split_name == "train":
                # Every minority training example gets a digit image of its own.
                if n_minor > len(pool) - 1:
                    raise DataError(
                        f"data.synthetic.train_counts: {n_minor} minority examples of class {y} need as many "
                        f"unique digit images, the train pool has {len(pool)}"
                    )
                minor_ids, major_pool = pool[:n_minor], pool[n_minor:]
            else:
                minor_ids, major_pool = rng.choice(pool, size=n_minor, replace=True), pool
            major_ids = rng.choice(major_pool, size=n_major, replace=True)
            for place, ids in ((y, major_ids), (minority_place, minor_ids)):
                ys.append(np.full(len(ids), y))
                as_.append(np.full(len(ids), place))
                digit_ids.append(ids)
        y_arr = np.concatenate(ys)
        a_arr = np.concatenate(as_)
        d_arr = np.concatenate(digit_ids).astype(np.int64)
        bg_index = rng.integers(0, BACKGROUND_BANK, size=len(y_arr))
        backgrounds = (
            torch.stack([banks[a][b] for a, b in zip(a_arr, bg_index)]) if len(y_arr) else torch.zeros(0, 3, size, size)
        )
        step()
        images = _compose(d_arr, backgrounds, size, tile, syn.jitter, rng)
        y_t = torch.from_numpy(y_arr).long()
        a_t = torch.from_numpy(a_arr).long()
        splits[split_name] = SplitData(split_name, y=y_t, a=a_t, g=SYNTHETIC_GROUPS.group_of(y_t, a_t), images=images)
    return DatasetBundle(
        name="synthetic-waterbirds",
        groups=SYNTHETIC_GROUPS,
        splits=splits,
        image_size=size,
        channels=3,
        layout="embedded (sklearn digits on sample-photo backgrounds)",
        check={"layout": "embedded", "counts": {k: v.group_counts(4) for k, v in splits.items()}},
    )
