"""Paper B's training recipe: CIFAR-10 augmentation (pad 4, random crop, flip), and the presets
say what the lab does (no ``augment = true`` where nothing is augmented)."""

from __future__ import annotations

import torch

from labconsole.config.rare import RareConfig
from labconsole.engine.rare.training import Recipe, crop_flip
from labconsole.presets import PRESETS_DIR, load_preset


def test_crop_flip_takes_a_shifted_window_of_the_padded_image() -> None:
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6) + 1.0
    out = crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):
        windows = [
            padded[i, :, r : r + 6, c : c + 6].flip(-1) if flipped else padded[i, :, r : r + 6, c : c + 6]
            for r in range(5)
            for c in range(5)
            for flipped in (False, True)
        ]
        assert any(torch.equal(out[i], w) for w in windows)


def test_crop_flip_shifts_and_flips_about_half_the_images() -> None:
    x = torch.rand(2000, 1, 8, 8) + 0.5
    out = crop_flip(x, torch.Generator().manual_seed(1))
    unchanged = (out == x).flatten(1).all(1).float().mean()
    assert unchanged < 0.1  # 1 in 81 offsets is the identity, and half of those are flipped
    # Every image keeps most of its pixels: at most a 4-pixel shift on each axis.
    assert bool(((out > 0).flatten(1).float().mean(1) >= (4 / 8) ** 2 - 1e-6).all())


def test_recipe_augments_only_when_the_preset_says_so() -> None:
    assert Recipe.from_config(RareConfig(), augment=True).augment == "crop_flip"
    assert Recipe.from_config(RareConfig()).augment == "none"
    for path in sorted((PRESETS_DIR / "rare").glob("*.toml")):
        preset = load_preset(path)
        # The embedded digits are not augmented in Paper B's MNIST setting, and the config says so.
        assert preset.data.dataset == "digits" and preset.data.augment is False, path.name
    cifar = load_preset(PRESETS_DIR / "rare" / "score-vs-n.toml", ["data.dataset=cifar10", "data.augment=true"])
    assert Recipe.from_config(cifar.rare, cifar.data.augment).augment == "crop_flip"


def test_augmented_training_runs_and_is_reproducible() -> None:
    from labconsole.engine.rare.training import train_classifier

    def train() -> list[float]:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
        x, y = torch.rand(64, 3, 8, 8), torch.randint(0, 2, (64,))
        recipe = Recipe(epochs=2, batch_size=16, augment="crop_flip")
        return train_classifier(model, x, y, recipe, seed=3)

    assert train() == train()
