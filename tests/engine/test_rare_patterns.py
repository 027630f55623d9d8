"""Paper B's spurious patterns and their injection (SPEC §6)."""

from __future__ import annotations

import pytest
import torch

from labconsole.engine.data.patterns import (
    PATTERN_NAMES,
    choose_spurious_indices,
    inject_pattern,
    inv_bounds,
    make_pattern,
)
from labconsole.errors import UserError

SHAPE = (1, 28, 28)


def blank(n: int = 1, shape: tuple[int, int, int] = SHAPE) -> torch.Tensor:
    return torch.zeros((n, *shape))


@pytest.mark.parametrize("name, side", [("S1", 1), ("S2", 3), ("S3", 5)])
def test_small_patterns_set_exactly_the_top_left_block(name: str, side: int) -> None:
    out = make_pattern(name, (3, 32, 32)).apply(blank(2, (3, 32, 32)) + 0.25)
    expected = torch.full((2, 3, 32, 32), 0.25)
    expected[:, :, :side, :side] = 1.0
    assert torch.equal(out, expected)


def test_inv_is_the_bar_rows_3_to_24_cols_13_to_15_on_28x28() -> None:
    out = make_pattern("Inv", SHAPE).apply(blank())[0, 0]
    rows, cols = torch.nonzero(out == 1.0, as_tuple=True)
    assert set(rows.tolist()) == set(range(3, 25))
    assert set(cols.tolist()) == {13, 14, 15}
    assert int(out.sum()) == 22 * 3


def test_inv_scales_to_other_sizes() -> None:
    (r0, r1), (c0, c1) = inv_bounds(56, 56)
    assert (r0, r1, c0, c1) == (6, 50, 26, 32)
    mask = make_pattern("Inv", (3, 32, 32)).mask
    assert mask is not None and mask.all(0).sum() == mask[0].sum()  # same bar in every channel


def test_random_patterns_are_seeded_shared_and_scaled() -> None:
    r3 = make_pattern("R3", SHAPE, seed=4)
    again = make_pattern("R3", SHAPE, seed=4)
    other = make_pattern("R3", SHAPE, seed=5)
    r1 = make_pattern("R1", SHAPE, seed=4)
    assert torch.equal(r3.delta, again.delta)
    assert not torch.equal(r3.delta, other.delta)
    assert torch.allclose(r1.delta * 4, r3.delta)  # same δ, amplitude 0.25 vs 1.0
    assert float(r3.delta.min()) >= 0.0 and float(r3.delta.max()) < 1.0
    images = torch.rand((4, *SHAPE))
    out = r3.apply(images)
    assert torch.allclose(out, (images + r3.delta).clamp(0, 1))  # one δ shared by every image
    assert float(out.max()) <= 1.0


def test_apply_leaves_input_untouched() -> None:
    images = torch.rand((3, *SHAPE))
    copy = images.clone()
    for name in PATTERN_NAMES:
        make_pattern(name, SHAPE, seed=1).apply(images)
    assert torch.equal(images, copy)


def test_injection_count_labels_and_seeding() -> None:
    labels = torch.tensor([0, 1, 0, 2, 0, 0, 1, 0])
    images = torch.rand((8, *SHAPE)) * 0.5
    pattern = make_pattern("S3", SHAPE)
    out, chosen = inject_pattern(images, labels, target=0, n=3, pattern=pattern, seed=11)
    assert len(chosen) == 3 and set(labels[chosen].tolist()) == {0}
    changed = [i for i in range(8) if not torch.equal(out[i], images[i])]
    assert changed == chosen.tolist()
    assert torch.equal(out[chosen], pattern.apply(images[chosen]))
    _, same = inject_pattern(images, labels, 0, 3, pattern, seed=11)
    assert torch.equal(same, chosen)
    draws = {tuple(choose_spurious_indices(labels, 0, 2, seed).tolist()) for seed in range(20)}
    assert len(draws) > 1  # the seed matters


def test_bad_inputs_raise_user_errors() -> None:
    labels = torch.tensor([0, 0, 1])
    with pytest.raises(UserError, match="known: S1, S2, S3, R1, R2, R3, Inv"):
        make_pattern("S4", SHAPE)
    with pytest.raises(UserError, match="only 2 images of target class 0"):
        choose_spurious_indices(labels, 0, 3, seed=0)
    with pytest.raises(UserError, match="no such class"):
        choose_spurious_indices(labels, 7, 1, seed=0)
    with pytest.raises(UserError, match="does not fit"):
        make_pattern("S3", (1, 4, 4))
