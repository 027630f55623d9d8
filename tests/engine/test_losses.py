"""Stage II losses: NT-Xent against a direct, loop-by-loop implementation of its definition."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from labconsole.engine.train.losses import contrastive_loss, mse_onehot, nt_xent, ntxent_masks, supervised_loss
from labconsole.errors import UserError


def direct_nt_xent(z: torch.Tensor, z_plus: torch.Tensor, tau: float) -> float:
    """SimCLR's definition written out: 2N anchors; positive = the other branch's vector of the
    same image; denominator = every vector except the anchor itself."""
    vectors = [v for v in z] + [v for v in z_plus]
    n = len(z)
    total = 0.0
    for i, anchor in enumerate(vectors):
        positive = vectors[(i + n) % (2 * n)]
        sim = lambda a, b: float(torch.dot(a, b) / (a.norm() * b.norm())) / tau  # noqa: E731
        denominator = sum(math.exp(sim(anchor, other)) for j, other in enumerate(vectors) if j != i)
        total += -math.log(math.exp(sim(anchor, positive)) / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("n,d,tau", [(2, 2, 0.5), (3, 2, 0.1), (5, 7, 1.0), (4, 3, 2.0)])
def test_nt_xent_equals_direct_implementation(n: int, d: int, tau: float) -> None:
    gen = torch.Generator().manual_seed(n * 10 + d)
    z, z_plus = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen)
    assert float(nt_xent(z, z_plus, tau)) == pytest.approx(direct_nt_xent(z, z_plus, tau), rel=1e-5)


def test_positive_and_negative_masks() -> None:
    positive, negative = ntxent_masks(3)
    expected_pairs = {(0, 3), (1, 4), (2, 5), (3, 0), (4, 1), (5, 2)}
    assert {tuple(p) for p in torch.nonzero(positive).tolist()} == expected_pairs
    assert positive.sum(1).tolist() == [1] * 6  # exactly one positive per anchor
    assert not negative.diagonal().any()  # never the anchor itself
    assert not (negative & positive).any()
    assert negative.sum(1).tolist() == [4] * 6  # 2N - 2 negatives: the other images, both branches


def test_masks_agree_with_loss() -> None:
    """The loss built from the explicit masks equals nt_xent."""
    gen = torch.Generator().manual_seed(1)
    z, z_plus = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    f = F.normalize(torch.cat([z, z_plus]), dim=1)
    sim = torch.exp(f @ f.t() / 0.5)
    positive, negative = ntxent_masks(4)
    per_anchor = -torch.log(sim[positive] / (sim * (positive | negative)).sum(1))
    assert float(per_anchor.mean()) == pytest.approx(float(nt_xent(z, z_plus, 0.5)), rel=1e-5)


def test_identical_views_score_lower_than_unrelated() -> None:
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(8, 4, generator=gen)
    assert nt_xent(z, z.clone(), 0.5) < nt_xent(z, torch.randn(8, 4, generator=gen), 0.5)


def test_temperature_must_be_positive() -> None:
    with pytest.raises(UserError, match="temperature"):
        nt_xent(torch.randn(2, 2), torch.randn(2, 2), 0.0)


def test_mse_onehot_is_torch_mse_of_softmax() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.0, 0.5], [1.0, 1.0]])
    y = torch.tensor([0, 1, 0])
    probs = logits.softmax(1)
    expected = ((probs - F.one_hot(y, 2).float()) ** 2).mean()
    assert float(mse_onehot(logits, y)) == pytest.approx(float(expected))
    assert float(mse_onehot(probs, y, probabilities=True)) == pytest.approx(float(expected))


def test_ce_on_probabilities_is_a_double_softmax() -> None:
    """The authors' head: CE applied to probabilities (a second softmax inside the CE)."""
    logits = torch.tensor([[3.0, -2.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    probs = logits.softmax(1)
    on_probs = supervised_loss(probs, y, "ce", probabilities=True)
    assert float(on_probs) == pytest.approx(float(F.cross_entropy(probs, y)))
    assert float(on_probs) != pytest.approx(float(supervised_loss(logits, y, "ce")))


def test_double_same_view_gradients_reach_both_branches_through_one_term_each() -> None:
    a = torch.randn(4, 2, requires_grad=True)
    b = torch.randn(4, 2, requires_grad=True)
    contrastive_loss(a, b, 0.5, "double-same-view").backward()
    ga, gb = a.grad.clone(), b.grad.clone()
    # Each branch gets exactly the gradient of the term where the other one is detached.
    a2, b2 = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    nt_xent(a2, b2.detach(), 0.5).backward()
    nt_xent(a2.detach(), b2, 0.5).backward()
    assert torch.allclose(ga, a2.grad) and torch.allclose(gb, b2.grad)
    # And the sum equals the two-view loss counted twice in value.
    with torch.no_grad():
        assert float(contrastive_loss(a, b, 0.5, "double-same-view")) == pytest.approx(2 * float(nt_xent(a, b, 0.5)))
