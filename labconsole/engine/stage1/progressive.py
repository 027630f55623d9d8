"""Progressive readouts: an estimate from a fixed stratified subsample first, exact numbers next.

The subsample of a split is every example of a group with at most ``cap`` examples and ``cap``
examples drawn (seeded) from each larger group. A split is evaluated in the order "subsample,
then the rest", so the exact numbers cost no more than a plain full pass.

The estimate uses the exact baseline (known per example) and the flips seen in the subsample:
``after_g ≈ base_g + p⁺ − p⁻`` with p⁺ / p⁻ the group's share of examples that became correct /
wrong. Its interval combines a Wilson score interval for p⁺ and one for p⁻ (each at 97.5 %, so the
pair holds at ≥ 95 % by the union bound), with the finite-population correction (a group sampled
whole has a zero-width interval: the estimate is then exact). Wilson rather than a normal
interval because flips are rare: a subsample with no flip must not claim certainty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from labconsole.engine.records.sections import ReadoutSplit

Z_EACH = 2.2414  # two-sided 97.5 % normal quantile: p⁺ and p⁻ bounds jointly ≥ 95 %


def stratified_order(g: torch.Tensor, num_groups: int, cap: int, seed: int) -> tuple[torch.Tensor, int]:
    """Split positions ordered "subsample first": ``(order, n_sample)``; ``order[:n_sample]`` is
    the subsample (sorted), ``order[n_sample:]`` the rest (sorted)."""
    g = g.cpu()
    generator = torch.Generator().manual_seed(int(seed))
    chosen = torch.zeros(len(g), dtype=torch.bool)
    for group in range(num_groups):
        members = torch.nonzero(g == group).flatten()
        if len(members) <= cap:
            chosen[members] = True
        else:
            chosen[members[torch.randperm(len(members), generator=generator)[:cap]]] = True
    sample = torch.nonzero(chosen).flatten()
    rest = torch.nonzero(~chosen).flatten()
    return torch.cat([sample, rest]), len(sample)


def wilson(p: float, n_eff: float, z: float = Z_EACH) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` seen on ``n_eff`` (effective) examples."""
    if n_eff <= 0:
        return 0.0, 1.0
    if math.isinf(n_eff):
        return p, p
    denom = 1.0 + z * z / n_eff
    centre = (p + z * z / (2 * n_eff)) / denom
    half = z * math.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff * n_eff)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def effective_n(n: int, total: int) -> float:
    """Sample size corrected for sampling without replacement from ``total`` examples."""
    if n >= total:
        return math.inf
    return n * (total - 1) / (total - n) if total > 1 else float(n)


def estimate(
    group_names: Sequence[str],
    baseline: Sequence[float | None],
    totals: Sequence[int],
    g_sample: torch.Tensor,
    base_correct: torch.Tensor,
    after_correct: torch.Tensor,
) -> ReadoutSplit:
    """Estimated readout of one split from its subsample.

    ``after_correct``: bool [repeats, n_sample] (seeds or control draws), ``base_correct``: bool
    [n_sample]. Returns the split's ``ReadoutSplit`` with ``ci_pp`` ({g: [lo, hi]} on
    ``delta_pp``), ``sampled`` and ``of`` ({g: n}); ``after`` is the mean over repeats."""
    out = ReadoutSplit(baseline={}, after={}, delta_pp={}, spread_pp={}, ci_pp={}, sampled={}, of={})  # all set
    after = after_correct.to(torch.float64)
    base = base_correct.to(torch.float64)
    for j, name in enumerate(group_names):
        mask = g_sample.cpu() == j
        n = int(mask.sum())
        total = int(totals[j])
        base_j = baseline[j]
        out.baseline[name] = base_j
        out.sampled[name], out.of[name] = n, total
        if base_j is None or n == 0:
            out.after[name] = out.delta_pp[name] = out.spread_pp[name] = out.ci_pp[name] = None
            continue
        a, b = after[:, mask], base[mask]
        gained = float(((a - b).clamp_min(0)).mean())  # share now right that was wrong (over repeats)
        lost = float(((b - a).clamp_min(0)).mean())
        per_repeat = base_j + (a - b).mean(dim=1)  # estimated accuracy of each repeat
        n_eff = effective_n(n, total)
        gained_lo, gained_hi = wilson(gained, n_eff)
        lost_lo, lost_hi = wilson(lost, n_eff)
        # The subsample's share of baseline-correct examples is not the split's, so the sum can
        # leave [0, 1]; an accuracy cannot, so the estimate and its interval are clipped to it.
        mean_after = min(1.0, max(0.0, base_j + gained - lost))
        spread = float(per_repeat.std(unbiased=True)) if len(per_repeat) > 1 else 0.0
        out.after[name] = mean_after
        out.delta_pp[name] = (mean_after - base_j) * 100.0
        out.spread_pp[name] = spread * 100.0
        floor, ceiling = -base_j * 100.0, (1.0 - base_j) * 100.0
        out.ci_pp[name] = [
            min(ceiling, max(floor, (gained_lo - lost_hi) * 100.0)),
            min(ceiling, max(floor, (gained_hi - lost_lo) * 100.0)),
        ]
    return out
