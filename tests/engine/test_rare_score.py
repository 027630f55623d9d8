"""Spurious score, accuracies, Welch test and the training recipe (SPEC §6)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labconsole.engine.data.patterns import make_pattern
from labconsole.engine.rare.spurious_score import mean_se, spurious_measures, spurious_score_from_probs, welch_greater
from labconsole.engine.rare.training import Recipe, train_classifier
from labconsole.errors import UserError

SHAPE = (1, 8, 8)
TARGET = 0


class CornerDetector(nn.Module):
    """Target logit = a · x[0,0] · x[1,1]; other logits 0, except the true-class pixel in row 7.

    Images whose pixel (1,1) is 1 react to the S1 pattern; the others cannot."""

    def __init__(self, gain: float):
        super().__init__()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = 3.0 * x[:, 0, 7, :5].repeat(1, 2)  # class c gets its evidence from column c % 5
        logits[:, TARGET] += self.gain * x[:, 0, 0, 0] * x[:, 0, 1, 1]
        return logits


def make_test_set() -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.tensor([0, 0, 1, 2, 3, 4, 1, 2, 3, 4])
    x = torch.zeros((10, *SHAPE))
    for i, c in enumerate(labels.tolist()):
        x[i, 0, 7, c] = 1.0
    x[[0, 2, 3, 4, 5], 0, 1, 1] = 1.0  # target image 0 and four of eight others react
    return x, labels


def test_score_on_a_model_with_a_known_answer() -> None:
    x, y = make_test_set()
    pattern = make_pattern("S1", SHAPE)
    strong = spurious_measures(CornerDetector(gain=10.0), x, y, pattern, TARGET, epsilon=0.1)
    assert strong["score"] == pytest.approx(4 / 8)  # target-class images are excluded
    assert strong["clean_acc"] == 1.0  # the pattern is absent from clean images
    weak = spurious_measures(CornerDetector(gain=0.01), x, y, pattern, TARGET, epsilon=0.1)
    assert weak["score"] == 0.0
    # With gain 10 the four reacting non-target images flip to the target class.
    assert weak["spurious_acc"] == 1.0
    assert strong["spurious_acc"] == pytest.approx(6 / 10)


def test_score_threshold_is_strict_and_checked() -> None:
    p_clean = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    p_pattern = torch.tensor([[0.3, 0.7], [0.75, 0.25]])
    labels = torch.tensor([1, 1])
    assert spurious_score_from_probs(p_clean, p_pattern, labels, 0, epsilon=0.2) == 0.5
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(UserError, match="strictly between 0 and 1"):
            spurious_score_from_probs(p_clean, p_pattern, labels, 0, epsilon=bad)


def test_welch_test_direction() -> None:
    high, low = [0.5, 0.6, 0.7, 0.65], [0.1, 0.2, 0.1, 0.15]
    assert welch_greater(high, low) < 0.01
    assert welch_greater(low, high) > 0.99
    assert welch_greater([0.3], low) is None
    assert welch_greater([0.2, 0.2], [0.0, 0.0]) == 0.0  # both constant: decided by the means


def test_mean_se() -> None:
    stats = mean_se([1.0, 2.0, 3.0])
    assert stats.mean == 2.0 and stats.se == pytest.approx(1.0 / 3**0.5) and stats.n == 3
    assert stats.to_json() == {"mean": 2.0, "se": stats.se, "n": 3}  # the keys the tables have always had
    assert mean_se([]).to_json() == {"mean": None, "se": None, "n": 0}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"optimizer": "sgd"},
        {"clip_value": 0.01},
        {"clip_norm": 0.1},
        {"input_noise_std": 0.1, "weight_decay": 1e-3},
    ],
)
def test_training_recipe_learns_and_is_reproducible(changes: dict) -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand((200, 1, 4, 4), generator=g)
    y = (x[:, 0, 0, 0] > 0.5).long()

    def run() -> tuple[list[float], torch.Tensor]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        losses = train_classifier(
            model, x, y, Recipe(epochs=15, batch_size=32, lr=0.05, lr_milestones=(10,), **changes), seed=3
        )
        return losses, model[1].weight.detach().clone()

    losses, weights = run()
    again, weights2 = run()
    assert losses == again and torch.equal(weights, weights2)
    assert losses[-1] < losses[0]


def test_welch_test_on_nearly_identical_samples_is_silent() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's precision-loss warning would reach ``-q`` output
        p = welch_greater([0.5, 0.5, 0.5000000000000001], [0.5, 0.5, 0.5])
    assert p is None or 0.0 <= p <= 1.0


def test_pixel_importance_is_the_signed_maximum_weight_by_default() -> None:
    from labconsole.engine.rare.visualise import pixel_importance

    layer = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, -2.0, 0.0, 0.3], [0.2, -1.0, -0.5, 0.1], [-0.4, 0.5, -0.1, 0.2]]))
    model = nn.Sequential(nn.Flatten(), layer)
    signed = pixel_importance(model, (1, 2, 2))
    magnitude = pixel_importance(model, (1, 2, 2), "abs")
    assert signed is not None and magnitude is not None
    assert torch.allclose(signed.flatten(), torch.tensor([0.2, 0.5, 0.0, 0.3]))
    assert torch.allclose(magnitude.flatten(), torch.tensor([0.4, 2.0, 0.5, 0.3]))
