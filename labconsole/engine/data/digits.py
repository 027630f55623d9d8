"""Paper B's default dataset on a CPU: scikit-learn's handwritten digits (1797 images, 8×8,
17 grey levels), made MNIST-like.

``digits``: the 8×8 digit is upsampled to 20×20 and padded by 4 pixels into a 28×28 grey image,
as MNIST centres its digits in a 20×20 box; the top-left corner where S1–S3 go stays blank.
``digits-color``: the same at 24×24 padded into 32×32, 3 channels, each digit drawn in a seeded
random colour (a CIFAR-sized colour variant). Splits are stratified and fixed by ``data.seed``:
75 % train, 5 % val, 20 % test. Paper B feeds raw [0, 1] pixels, so mean 0 and std 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from labconsole.config.data import DataConfig
from labconsole.engine.data.groups import DatasetBundle, GroupInfo, SplitData

DIGIT_GROUPS = GroupInfo(class_names=tuple(str(d) for d in range(10)), attr_names=("clean",))
SPLIT_FRACTIONS = {"train": 0.75, "val": 0.05, "test": 0.20}


def render_digits(images_8x8: torch.Tensor, *, inner: int, size: int) -> torch.Tensor:
    """float [N, 8, 8] in 0..16 → float [N, 1, size, size] in [0, 1], digit centred in ``inner``."""
    x = (images_8x8.float() / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(inner, inner), mode="bilinear", align_corners=False, antialias=False)
    pad = (size - inner) // 2
    x = F.pad(x, (pad, size - inner - pad, pad, size - inner - pad))
    return x.clamp(0.0, 1.0)


def stratified_split(labels: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Per-class seeded shuffle, then the first 75 % train, next 5 % val, last 20 % test."""
    generator = torch.Generator().manual_seed(int(seed) + 20_230)
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in SPLIT_FRACTIONS}
    for cls in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_train = round(SPLIT_FRACTIONS["train"] * len(idx))
        n_val = round(SPLIT_FRACTIONS["val"] * len(idx))
        parts["train"].append(idx[:n_train])
        parts["val"].append(idx[n_train : n_train + n_val])
        parts["test"].append(idx[n_train + n_val :])
    return {name: torch.cat(chunks).sort().values for name, chunks in parts.items()}


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255.0).round().clamp(0, 255).to(torch.uint8)


def load_digits_dataset(cfg: DataConfig) -> DatasetBundle:
    """``cfg`` is a DataConfig with dataset "digits" or "digits-color"."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = torch.as_tensor(raw.images, dtype=torch.float32)
    labels = torch.as_tensor(raw.target, dtype=torch.long)
    color = cfg.dataset == "digits-color"
    if color:
        grey = render_digits(images, inner=24, size=32)
        generator = torch.Generator().manual_seed(int(cfg.seed) + 77)
        # A bright random colour per digit keeps every image readable on the black background.
        colours = 0.4 + 0.6 * torch.rand(len(grey), 3, 1, 1, generator=generator)
        pixels = grey * colours
        size, channels = 32, 3
    else:
        pixels = render_digits(images, inner=20, size=28)
        size, channels = 28, 1
    pixels_u8 = _to_uint8(pixels)
    index = stratified_split(labels, cfg.seed)
    cap = int(getattr(cfg, "max_per_split", 0) or 0)
    splits: dict[str, SplitData] = {}
    for name, idx in index.items():
        if cap:
            idx = idx[:cap]
        y = labels[idx]
        a = torch.zeros_like(y)
        splits[name] = SplitData(name=name, y=y, a=a, g=DIGIT_GROUPS.group_of(y, a), images=pixels_u8[idx])
    counts = {name: len(split) for name, split in splits.items()}
    return DatasetBundle(
        name=cfg.dataset,
        groups=DIGIT_GROUPS,
        splits=splits,
        image_size=size,
        channels=channels,
        mean=(0.0,) * channels,
        std=(1.0,) * channels,
        layout="sklearn-digits",
        check={"ok": True, "counts": counts, "source": "sklearn.datasets.load_digits"},
    )
