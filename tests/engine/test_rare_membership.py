"""Membership-inference pieces: features, disjoint splits, the attack (SPEC §6)."""

from __future__ import annotations

import numpy as np
import torch

from labconsole.engine.rare.membership import (
    ATTACK_C_GRID,
    attack_features,
    evaluate_attack,
    fit_attack,
    four_way_split,
)


def test_features_are_sorted_probabilities_plus_correct_bit() -> None:
    probs = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    labels = torch.tensor([1, 2])
    feats = attack_features(probs, labels)
    assert feats.shape == (2, 4)
    np.testing.assert_allclose(feats[0], [0.7, 0.2, 0.1, 1.0], rtol=1e-6)
    np.testing.assert_allclose(feats[1], [0.5, 0.3, 0.2, 0.0], rtol=1e-6)


def test_four_way_split_is_disjoint_complete_and_stratified() -> None:
    labels = torch.arange(10).repeat_interleave(41)
    parts = four_way_split(labels, seed=3)
    all_idx = torch.cat(list(parts.values()))
    assert len(all_idx) == len(labels) and len(set(all_idx.tolist())) == len(labels)
    sizes = [len(v) for v in parts.values()]
    assert max(sizes) - min(sizes) <= 3
    for idx in parts.values():
        counts = torch.bincount(labels[idx], minlength=10)
        assert int(counts.min()) >= 10
    assert not torch.equal(four_way_split(labels, seed=4)["target_train"], parts["target_train"])


def test_attack_separates_confident_members_from_unsure_non_members() -> None:
    rng = np.random.default_rng(0)

    def feats(conf: float, n: int) -> np.ndarray:
        top = np.clip(rng.normal(conf, 0.05, n), 0.11, 1.0)
        rest = np.repeat(((1 - top) / 9)[:, None], 9, axis=1)
        return np.concatenate([top[:, None], rest, (rng.random((n, 1)) < conf).astype(float)], axis=1)

    attack = fit_attack(feats(0.95, 200), feats(0.6, 200), seed=0)
    assert attack.best_params_["logisticregression__C"] in ATTACK_C_GRID
    target_in, target_out = feats(0.95, 100), feats(0.6, 100)
    result = evaluate_attack(attack, target_in, target_out, np.array([0, 1, 2]), feats(0.95, 50), feats(0.6, 50))
    assert result.accuracy > 0.8
    assert result.spurious_member_accuracy is not None and 0.0 <= result.spurious_member_accuracy <= 1.0
    blind = evaluate_attack(attack, target_in, target_out, None, target_in, target_out)
    assert blind.spurious_member_accuracy is None
